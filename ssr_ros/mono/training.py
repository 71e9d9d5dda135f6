"""Training of the monocular network (``ssr train-mono CONFIG``).

The same conventions as ``ssr train``: ``out_dir/log.jsonl`` (JSON lines: data, step records,
validations, resume / interrupt / time-limit events), ``out_dir/checkpoint.pt`` (model,
optimiser, schedule and step; read with ``weights_only=True``; ``--resume`` continues from it),
``out_dir/model.pt`` (the weights file, :mod:`ssr_ros.completion.weights` format, type
``mono_depth``). Ctrl-C or ``optim.max_seconds`` stop early and keep checkpoint and weights.
The rendered images are cached in ``out_dir/images.pt``.

Fine-tuning (``ssr train-mono CONFIG --finetune FOLDER``) starts from ``init_weights`` and
learns from the first part of the user's own RGB-D recording, validating on the rest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssr_ros.completion.training import OptimConfig
from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError
from ssr_ros.mono.data import ImageSet, MonoDataConfig, build_image_sets, source_name, training_batches
from ssr_ros.mono.losses import depth_metrics, mono_loss
from ssr_ros.mono.network import MonoDepthNet, MonoNetConfig
from ssr_ros.training_run import RunClock, TrainingRun, cosine_schedule


@dataclass
class MonoTrainingConfig:
    """Everything ``ssr train-mono CONFIG`` reads (yaml sections mirror the fields)."""

    network: MonoNetConfig = field(default_factory=MonoNetConfig)
    data: MonoDataConfig = field(default_factory=MonoDataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(steps=3000, batch_size=8, learning_rate=2e-3,
                                                                   validate_every=500, checkpoint_every=200, log_every=20))
    semantic_weight: float = param(0.5, "weight of the semantic cross-entropy against the depth NLL", low=0.0, high=100.0)
    out_dir: str = param("out/train_mono", "checkpoints, log and final weights go here")
    device: str = param("auto", "'auto', 'cpu', 'cuda' or 'cuda:N'")
    seed: int = param(0, "random seed", low=0, high=2**31 - 1)
    threads: int = param(0, "CPU threads for torch (0 = torch default)", low=0, high=512)
    init_weights: str = param("", "start from these mono weights (fine-tuning; same network shape); empty = random")

    def validate(self) -> "MonoTrainingConfig":
        validate_config(self)
        self.network.validate()
        self.data.validate()
        return self


@dataclass
class MonoTrainingResult:
    losses: list[float]
    validation: list[dict]
    model: MonoDepthNet
    weights_path: Path | None
    seconds: float


@torch.no_grad()
def evaluate_depth(model: MonoDepthNet, images: ImageSet, batch_size: int = 16) -> dict[str, dict[str, float]]:
    """Depth AbsRel / RMSE / delta<1.25 in metres per source group ('synthetic', each real folder)
    and over all images ('all'); each group also has its image count."""
    model.eval()
    device = next(model.parameters()).device
    predicted = []
    for i in range(0, len(images), batch_size):
        x = images.rgb[i : i + batch_size].to(device).permute(0, 3, 1, 2).float() / 255.0
        predicted.append(torch.exp(model(x).log_depth).cpu())
    if not predicted:
        return {}
    scale = images.scale[:, None, None]
    prediction, target = torch.cat(predicted) * scale, images.depth * scale
    groups: dict[str, list[int]] = {"all": list(range(len(images)))}
    for i, source in enumerate(images.source):
        groups.setdefault("synthetic" if source.startswith("synthetic:") else source, []).append(i)
    out = {}
    for name, index in groups.items():
        out[name] = {**depth_metrics(prediction[index], target[index]), "images": len(index)}
    return out


def _flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """{'val_<group>_<metric>': value} with real folders named by :func:`source_name`."""
    flat = {}
    for group, values in metrics.items():
        name = group if group in ("all", "synthetic") else source_name(group)
        for k in ("abs_rel", "rmse", "delta1"):
            flat[f"val_{name}_{k}"] = round(values[k], 4)
    return flat


def training_images(config: MonoTrainingConfig) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(generated train, real train, validation) images of ``config`` at its network's working size,
    cached in ``out_dir/images.pt`` (rendered and read only when the cache is missing or stale)."""
    net = config.network
    return build_image_sets(config.data, net.input_height, net.input_width, net.focal_ratio, Path(config.out_dir))


def train_mono(config: MonoTrainingConfig, resume: bool = False, progress: bool = True, command: str = "") -> MonoTrainingResult:
    """Train the monocular network as configured; writes ``out_dir/{log.jsonl, checkpoint.pt, model.pt}``."""
    from ssr_ros.completion.weights import load_model, save_model
    from ssr_ros.devices import resolve_device

    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    run = TrainingRun(config.out_dir, resume)
    net = config.network
    start = time.time()
    synthetic, real, val = training_images(config)
    run.log({"event": "data", "synthetic_images": len(synthetic), "real_images": len(real), "val_images": len(val),
             "seconds": round(time.time() - start, 2)})

    model = MonoDepthNet(net).to(device)
    if config.init_weights and not resume:
        initial = load_model(config.init_weights, device, expected_type=MonoDepthNet)
        if initial.config != model.config:
            raise ConfigError(f"init_weights '{config.init_weights}' hold a network of another shape: {initial.config}")
        model.load_state_dict(initial.state_dict())
    optim = config.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.learning_rate, weight_decay=optim.weight_decay)
    steps = optim.steps
    clock = RunClock(steps, optim.max_seconds)
    scheduler = cosine_schedule(optimizer, clock)
    first_step = 0
    if resume:
        first_step = run.restore_state(model, optimizer, scheduler, device)
        generator.manual_seed(config.seed + first_step)

    if device.type == "cuda":  # batches are drawn and augmented where the network runs
        synthetic, real = synthetic.to(device), real.to(device)
    batches = training_batches(synthetic, real, optim.batch_size, config.data, generator)
    losses: list[float] = []
    validation: list[dict] = []

    def run_validation(step: int) -> None:
        if len(val):
            metrics = _flat_metrics(evaluate_depth(model, val))
            validation.append({"step": step, **metrics})
            run.log({"event": "validation", "step": step, **metrics})

    iterator = range(first_step, steps)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="train-mono", unit="step", initial=first_step, total=steps)
    train_start = clock.start()
    interrupted = stopped_early = False
    try:
        for step in iterator:
            if optim.max_seconds and time.time() - train_start > optim.max_seconds:
                stopped_early = True
                run.save_state(model, optimizer, scheduler, step, config)
                run.log({"event": "time_limit", "step": step, "seconds": round(time.time() - train_start, 1)})
                run_validation(step)
                break
            model.train()
            rgb, depth, labels = next(batches)
            terms = mono_loss(model(rgb.to(device)), depth.to(device), labels.to(device), config.semantic_weight)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            if optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(float(terms["total"].detach()))
            done = step + 1
            if done % optim.log_every == 0 or done == steps:
                run.log({"step": done, **{k: round(float(v.detach()), 5) for k, v in terms.items()},
                         "lr": scheduler.get_last_lr()[0], "seconds": round(time.time() - train_start, 2)})
                if hasattr(iterator, "set_postfix"):
                    iterator.set_postfix(loss=f"{losses[-1]:.4f}")
            if done % optim.validate_every == 0 or done == steps:
                run_validation(done)
            if done % optim.checkpoint_every == 0 or done == steps:
                run.save_state(model, optimizer, scheduler, done, config)
    except KeyboardInterrupt:
        interrupted = True
        run.save_state(model, optimizer, scheduler, first_step + len(losses), config)
        run.log({"event": "interrupted", "step": first_step + len(losses)})

    last = validation[-1] if validation else {}
    weights_path = save_model(model, run.weights_path, metadata={
        "command": command, "steps": first_step + len(losses), "interrupted": interrupted, "time_limited": stopped_early,
        "train_seeds": json.dumps(list(config.data.train_seeds)), "val_seeds": json.dumps(list(config.data.val_seeds)),
        "real_folders": json.dumps(list(config.data.real_folders)), "real_train_fraction": config.data.real_train_fraction,
        "init_weights": config.init_weights, "device": str(device), "train_seconds": round(time.time() - train_start, 1),
        "final_loss": float(np.mean(losses[-20:])) if losses else float("nan"),
        **{k: v for k, v in last.items() if k != "step"},
    })
    return MonoTrainingResult(losses, validation, model, weights_path, time.time() - start)


def finetune_config(config: MonoTrainingConfig, folder: str, init_weights: str) -> MonoTrainingConfig:
    """``config`` turned into a fine-tuning run on one RGB-D folder: only its first
    ``real_train_fraction`` trains, the rest validates; no generated rooms; starts from ``init_weights``,
    whose network (width, depth, input size, focal ratio) replaces the config's."""
    from ssr_ros.completion.weights import load_model

    config.network = load_model(init_weights, "cpu", expected_type=MonoDepthNet).config
    config.data.real_folders = [str(folder)]
    config.data.train_seeds = []
    config.data.val_seeds = []
    config.data.real_fraction = 1.0
    config.init_weights = str(init_weights)
    return config.validate()


def checkpoint_summary(path: str | Path) -> dict[str, Any]:
    """Step and config of a checkpoint (read with ``weights_only=True``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {"step": int(state["step"]), "config": json.loads(state["config"])}
