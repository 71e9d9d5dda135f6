"""The files of one training run, and the learning-rate decay, shared by every trainer.

Each trainer (``ssr train``, ``train-mono``, ``train-regularizer``, ``train-objects``) writes into
its ``out_dir``:

- ``log.jsonl``: one JSON record per line (training steps, validations, events). A fresh run
  starts a fresh log; a resumed run appends to it.
- ``checkpoint.pt``: a dict of tensors and primitives (model, optimiser, step, ...), written
  atomically (a run killed while writing keeps the previous checkpoint) and read back with
  ``torch.load(weights_only=True)``. ``--resume`` continues from it and refuses to start without it.
- ``model.pt``: the weights, written by the trainer in its own format.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from ssr_ros.atomic_file import atomic_write
from ssr_ros.config import config_to_dict
from ssr_ros.errors import ConfigError


class TrainingRun:
    """The log, checkpoint and weights paths of a run in ``out_dir``. ``resume``: continue from the
    checkpoint (ConfigError without one); otherwise an earlier run's log is removed. ``main``: this
    process writes (in a distributed run only rank 0 does)."""

    def __init__(self, out_dir: str | Path, resume: bool = False, main: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.log_path = self.out_dir / "log.jsonl"
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        self.weights_path = self.out_dir / "model.pt"
        self.resume = resume
        self.main = main
        if resume and not self.checkpoint_path.is_file():
            raise ConfigError(f"cannot resume: no checkpoint at '{self.checkpoint_path}'")
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if not resume and self.log_path.exists():
                self.log_path.unlink()

    def log(self, record: dict[str, Any]) -> None:
        """Append one record to ``log.jsonl``."""
        if self.main:
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Write ``state`` (tensors, state dicts and primitives only) as the checkpoint, atomically."""
        if self.main:
            with atomic_write(self.checkpoint_path, "checkpoint") as handle:
                torch.save(state, handle)

    def load_checkpoint(self, map_location: torch.device | str = "cpu") -> dict[str, Any]:
        """The checkpoint's dict, read with ``weights_only=True``."""
        return torch.load(self.checkpoint_path, map_location=map_location, weights_only=True)

    def save_state(self, model, optimizer, scheduler, step: int, config) -> None:
        """The checkpoint of a trainer driven by a learning-rate scheduler: model, optimiser and
        scheduler states, ``step`` and the run's config (a JSON string)."""
        self.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                              "scheduler": scheduler.state_dict(), "step": step,
                              "config": json.dumps(config_to_dict(config))})

    def restore_state(self, model, optimizer, scheduler, map_location: torch.device | str = "cpu") -> int:
        """Load a :meth:`save_state` checkpoint into ``model``, ``optimizer`` and ``scheduler``, log
        the resume and return the step it was written at."""
        state = self.load_checkpoint(map_location)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        self.log({"event": "resume", "step": step})
        return step


def cosine_decay(fraction: float, floor: float) -> float:
    """Learning-rate factor ``fraction`` of the way through a run: 1 at the start, ``floor`` at the
    end, half a cosine between (``fraction`` is clamped to [0, 1])."""
    fraction = min(max(fraction, 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * fraction))


class RunClock:
    """How far a training run has got: by steps, or by time when ``max_seconds`` (0 = none) ends it
    sooner. The time counts from :meth:`start` (from construction until then)."""

    def __init__(self, steps: int, max_seconds: float = 0.0):
        self.steps, self.max_seconds = int(steps), float(max_seconds)
        self.started = time.time()

    def start(self) -> float:
        """Start the time (when the steps begin); returns it, ``time.time()`` seconds."""
        self.started = time.time()
        return self.started

    def fraction(self, step: int) -> float:
        """Fraction of the run done at ``step``, in [0, 1]."""
        done = min(step, self.steps) / max(self.steps, 1)
        if self.max_seconds:
            done = max(done, min(1.0, (time.time() - self.started) / self.max_seconds))
        return done


def cosine_schedule(optimizer: torch.optim.Optimizer, clock: RunClock,
                    floor: float = 0.05) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate decayed by :func:`cosine_decay` over ``clock``'s fraction of the run."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_decay(clock.fraction(step), floor))
