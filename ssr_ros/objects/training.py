"""``ssr train-objects``: train the per-class shape prior on the furniture templates.

Every step draws fresh objects: a random class of ``data.classes``, one of its templates with
random parameters, seen partially by 1-3 simulated cameras (:func:`~ssr_ros.objects.observation.simulate_observation`)
and binned into the class's canonical grid turned by a random yaw (any angle for
``data.full_turn_fraction`` of the samples, else within +-12 degrees, as after the coarse yaw
search). Loss: L1 between the predicted and the exact truncated SDF (cells near the surface
weighted ``loss.surface_weight``) plus ``loss.yaw_weight`` x the cross-entropy of the yaw head
against a soft target around the true yaw. Validation samples come from a separate random
stream (``seed + 1_000_003``) and are fixed for the run.

With ``data.rooms.rooms`` > 0, ``data.rooms.share`` of each batch comes instead from the object
instances of fused generated rooms (:mod:`~ssr_ros.objects.room_views`: what the refinement hands
the prior in a map, built once and cached), and validation also scores the instances of
``data.rooms.validation_rooms`` further rooms (log key ``"rooms"``).

Writes ``out_dir/log.jsonl`` (one line per ``log_every`` steps, validation lines with
``"validation"``), ``out_dir/checkpoint.pt`` (resumable with ``--resume``) and
``out_dir/model.pt`` (the weights, see :mod:`ssr_ros.objects.weights`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.config import config_to_dict, param, validate_config
from ssr_ros.devices import resolve_device
from ssr_ros.errors import ConfigError
from ssr_ros.objects.network import ShapePriorNet, ShapePriorNetworkConfig, yaw_bin_centers, yaw_targets
from ssr_ros.objects.observation import ShapeSample, make_sample
from ssr_ros.objects.room_views import RoomViewsConfig, load_room_views
from ssr_ros.objects.shape_classes import CLASS_TEMPLATES, class_extents, shape_grid
from ssr_ros.objects.weights import save_shape_prior
from ssr_ros.training_run import TrainingRun, cosine_decay


@dataclass
class ShapeDataConfig:
    classes: list = param(list(CLASS_TEMPLATES), "taxonomy classes that get a prior (keys of CLASS_TEMPLATES)")
    full_turn_fraction: float = param(0.5, "share of samples turned by any yaw (the rest within +-12 degrees)", low=0.0, high=1.0)
    validation_samples: int = param(64, "fixed validation samples", low=1, high=100000)
    train_classes: list = param([], "with init_weights: draw objects of these classes only and train only their class "
                                "embeddings; the shared network and every other class stay exactly as they are (to "
                                "correct what the prior learned of a few classes); empty = all classes, all weights")
    rooms: RoomViewsConfig = field(default_factory=RoomViewsConfig)

    def validate(self) -> "ShapeDataConfig":
        validate_config(self)
        self.rooms.validate()
        if self.rooms.rooms and self.train_classes:
            raise ConfigError("data.rooms trains the whole network on room instances: leave data.train_classes empty")
        unknown = sorted(set(self.classes) - set(CLASS_TEMPLATES))
        if unknown or not self.classes:
            raise ConfigError(f"data.classes {unknown or '[]'} not allowed; expected a non-empty subset of {list(CLASS_TEMPLATES)}")
        return self

    def drawn(self) -> list[int]:
        """Indices into ``classes`` of the classes the samples are drawn from."""
        missing = sorted(set(self.train_classes) - set(self.classes))
        if missing:
            raise ConfigError(f"data.train_classes {missing} are not among the prior's classes {list(self.classes)}")
        return [self.classes.index(c) for c in self.train_classes] if self.train_classes else list(range(len(self.classes)))


@dataclass
class ShapeLossConfig:
    surface_weight: float = param(4.0, "weight of cells within the truncation band", low=0.0, high=1000.0)
    yaw_weight: float = param(0.2, "weight of the yaw cross-entropy", low=0.0, high=1000.0)


@dataclass
class ShapeOptimConfig:
    steps: int = param(1500, "optimisation steps", low=1, high=10_000_000)
    batch_size: int = param(8, "objects per step", low=1, high=256)
    learning_rate: float = param(2e-3, "Adam learning rate (cosine decay to 10%)", low=1e-7, high=1.0)
    grad_clip: float = param(1.0, "gradient norm clip (0 = off)", low=0.0, high=1e6)
    log_every: int = param(10, "steps between log lines", low=1, high=100000)
    validate_every: int = param(100, "steps between validations (0 = only at the end)", low=0, high=10_000_000)
    checkpoint_every: int = param(50, "steps between checkpoints", low=1, high=10_000_000)


@dataclass
class ShapePriorTrainingConfig:
    """Everything ``ssr train-objects`` needs."""

    out_dir: str = param("out/train_objects", "output directory (log, checkpoint, weights)")
    device: str = param("cpu", "torch device: 'cpu', 'cuda', 'cuda:N' or 'auto'")
    seed: int = param(0, "random seed of the objects and the initialisation", low=0, high=2**31 - 1)
    threads: int = param(0, "CPU threads for torch (0 = torch's default)", low=0, high=256)
    init_weights: str = param("", "start from these shape prior weights (.pt, e.g. models/shape_prior_small.pt) "
                              "instead of a random initialisation; their network shape and classes replace the "
                              "config's (empty = from scratch)")
    data: ShapeDataConfig = field(default_factory=ShapeDataConfig)
    network: ShapePriorNetworkConfig = field(default_factory=ShapePriorNetworkConfig)
    loss: ShapeLossConfig = field(default_factory=ShapeLossConfig)
    optim: ShapeOptimConfig = field(default_factory=ShapeOptimConfig)

    def validate(self) -> "ShapePriorTrainingConfig":
        validate_config(self)
        if self.data.train_classes and not self.init_weights:
            raise ConfigError("data.train_classes trains class embeddings of a trained prior: set init_weights")
        self.data.validate()
        self.network.validate()
        return self


@dataclass
class ShapePriorTrainingResult:
    losses: list
    validation: list
    seconds: float
    weights_path: Path


def draw_samples(count: int, classes: list[str], grids: dict, rng: np.random.Generator, full_turn_fraction: float,
                 drawn: list[int] | None = None) -> list[ShapeSample]:
    """``count`` random samples (classes drawn uniformly from ``drawn``, indices into ``classes``,
    default all; empty views drawn again)."""
    drawn = list(range(len(classes))) if drawn is None else drawn
    out = []
    while len(out) < count:
        k = drawn[int(rng.integers(len(drawn)))]
        sample = make_sample(classes[k], k, grids[classes[k]], rng, full_turn=bool(rng.uniform() < full_turn_fraction))
        if sample is not None:
            out.append(sample)
    return out


def shape_loss(output: dict, batch: dict, config: ShapePriorTrainingConfig, cells: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Total loss and its parts for one batch; ``cells`` (B,) cell size of each sample, metres."""
    trunc = config.network.truncation_cells * cells[:, None, None, None]
    target = (batch["sdf"] / trunc).clamp(-1, 1)
    weight = torch.where(target.abs() < 1, config.loss.surface_weight, 1.0)
    sdf_loss = (weight * (output["sdf"] - target).abs()).sum() / weight.sum()
    yaw_loss = -(yaw_targets(batch["yaw"], config.network.yaw_bins) * F.log_softmax(output["yaw_logits"], 1)).sum(1).mean()
    return sdf_loss + config.loss.yaw_weight * yaw_loss, {"sdf_l1": float(sdf_loss.detach()), "yaw_ce": float(yaw_loss.detach())}


def _collate(samples: list[ShapeSample], device) -> dict:
    return {"inputs": torch.stack([s.inputs for s in samples]).to(device),
            "sdf": torch.stack([s.sdf for s in samples]).to(device),
            "class_index": torch.tensor([s.class_index for s in samples], device=device),
            "yaw": torch.tensor([s.yaw for s in samples], dtype=torch.float32, device=device)}


@torch.no_grad()
def validate_prior(model, samples, config, cell_of, device) -> dict:
    """Mean SDF L1 (in truncation units), occupancy IoU (SDF < 0) and median yaw error (degrees)."""
    model.eval()
    l1 = inter = union = 0.0
    errors = []
    centers = yaw_bin_centers(config.network.yaw_bins).to(device)
    for i in range(0, len(samples), 8):
        batch = _collate(samples[i:i + 8], device)
        cells = torch.tensor([cell_of[int(c)] for c in batch["class_index"]], device=device)
        out = model(batch["inputs"], batch["class_index"])
        _, parts = shape_loss(out, batch, config, cells)
        l1 += parts["sdf_l1"] * len(samples[i:i + 8])
        pred, true = out["sdf"] < 0, batch["sdf"] < 0
        inter += float((pred & true).sum())
        union += float((pred | true).sum())
        yaw = centers[out["yaw_logits"].argmax(1)]
        errors += (torch.remainder(yaw - batch["yaw"] + math.pi, 2 * math.pi) - math.pi).abs().rad2deg().tolist()
    model.train()
    return {"sdf_l1": l1 / len(samples), "occupancy_iou": inter / max(union, 1.0),
            "median_yaw_error_deg": float(np.median(errors))}


def _start_from(config: ShapePriorTrainingConfig):
    """The prior of ``config.init_weights``; ``config.network`` and ``config.data.classes`` take
    its shape and classes (a file that is not shape prior weights is refused with MapFileError)."""
    from ssr_ros.objects.weights import load_shape_prior

    prior = load_shape_prior(config.init_weights)
    unknown = sorted(set(prior.class_names) - set(CLASS_TEMPLATES))
    if unknown:
        raise ConfigError(f"init_weights '{config.init_weights}': classes {unknown} have no furniture templates")
    config.network = prior.model.config
    config.data.classes = list(prior.class_names)
    return prior


def train_shape_prior(config: ShapePriorTrainingConfig, resume: bool = False, progress: bool = True,
                      command: str = "") -> ShapePriorTrainingResult:
    """Train (or resume) the shape prior; see the module docstring for the outputs."""
    from tqdm import tqdm

    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    run = TrainingRun(config.out_dir, resume)
    start_time = time.perf_counter()
    start = _start_from(config) if config.init_weights else None  # takes the weights' network and classes
    classes = list(config.data.classes)
    extents = {k: v for k, v in class_extents().items() if k in classes}
    grids = {k: shape_grid(extents[k], config.network.grid_size) for k in classes}
    cell_of = [grids[k].cell for k in classes]
    val_rng = np.random.default_rng(config.seed + 1_000_003)
    drawn = config.data.drawn()
    val_samples = draw_samples(config.data.validation_samples, classes, grids, val_rng, config.data.full_turn_fraction, drawn)
    rooms = config.data.rooms
    room_train = load_room_views(rooms.train_seeds(), grids, classes, rooms, progress) if rooms.rooms else []
    room_val = load_room_views(rooms.validation_seeds(), grids, classes, rooms, progress) if rooms.rooms else []
    from_rooms = int(round(config.optim.batch_size * rooms.share)) if room_train else 0

    torch.manual_seed(config.seed)
    if start is not None and not resume:
        model = start.model.to(device).train()
    else:
        model = ShapePriorNet(len(classes), config.network).to(device)
    trained_rows = None
    if config.data.train_classes:
        # only the drawn classes' embedding rows move: the rest of the network is frozen and the
        # other rows get no gradient (Adam leaves a parameter with zero gradients where it is)
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        model.embed.weight.requires_grad_(True)
        trained_rows = torch.zeros(len(classes), 1, device=device)
        trained_rows[drawn] = 1.0
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.optim.learning_rate)
    steps = config.optim.steps

    def lr_at(step: int) -> float:
        return config.optim.learning_rate * cosine_decay(step / steps, 0.1)

    step, losses, validation = 0, [], []
    if resume:
        ckpt = run.load_checkpoint()
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, losses = int(ckpt["step"]), list(ckpt["losses"])
    rng = np.random.default_rng([config.seed, step])

    def checkpoint() -> None:
        run.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                             "losses": losses, "config": config_to_dict(config)})

    if step == 0:
        run.log({"event": "start", "command": command, "parameters": model.num_parameters(),
                 "config": config_to_dict(config), "extents": extents})
    model.train()
    window: list[float] = []
    with tqdm(total=steps, initial=step, desc="train", disable=not progress) as bar:
        while step < steps:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            samples = draw_samples(config.optim.batch_size - from_rooms, classes, grids, rng, config.data.full_turn_fraction, drawn)
            if from_rooms:
                samples += [room_train[i] for i in rng.choice(len(room_train), from_rooms, replace=len(room_train) < from_rooms)]
            batch = _collate(samples, device)
            cells = torch.tensor([cell_of[int(c)] for c in batch["class_index"]], device=device)
            loss, _ = shape_loss(model(batch["inputs"], batch["class_index"]), batch, config, cells)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if trained_rows is not None:
                model.embed.weight.grad *= trained_rows
            if config.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            window.append(float(loss.detach()))
            bar.update(1)
            if step % config.optim.log_every == 0 or step == steps:
                run.log({"step": step, "loss": sum(window) / len(window), "lr": lr_at(step),
                         "seconds": round(time.perf_counter() - start_time, 1)})
                bar.set_postfix(loss=f"{sum(window) / len(window):.4f}")
                window = []
            if (config.optim.validate_every and step % config.optim.validate_every == 0) or step == steps:
                record = {"step": step, **validate_prior(model, val_samples, config, cell_of, device)}
                if room_val:
                    record["rooms"] = validate_prior(model, room_val, config, cell_of, device)
                validation.append(record)
                run.log({"validation": record})
            if step % config.optim.checkpoint_every == 0 or step == steps:
                checkpoint()
    save_shape_prior(model, run.weights_path, classes, extents, metadata={
        "steps": step, "command": command, "samples_seen": step * config.optim.batch_size,
        "final_loss": float(np.mean(losses[-10:])) if losses else float("nan"),
        "validation": json.dumps(validation[-1]) if validation else ""})
    return ShapePriorTrainingResult(losses, validation, time.perf_counter() - start_time, run.weights_path)
