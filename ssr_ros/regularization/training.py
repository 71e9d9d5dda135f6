"""``ssr train-regularizer``: supervised training of the learned regulariser on generated rooms.

Rooms of ``data.train_seeds`` are generated, captured with noisy depth and 2D-predictor labels
and fused (:mod:`ssr_ros.regularization.scenes`; cached under ``out_dir/rooms``). Each step cuts
random crops (flipped and turned about the vertical axis), computes the data cost of the fused
input and minimises the cross-entropy of the network's labelling against the exact labels
(free space included) over the voxels a camera in the room could see, with GT-occupied voxels
weighted ``loss.occupied_weight``. Writes ``out_dir/log.jsonl`` (one line per ``log_every``
steps, validation lines with ``"validation"``), ``out_dir/checkpoint.pt`` (resumable) and
``out_dir/model.pt`` (the weights at the end) and ``out_dir/best.pt`` (the weights at the
validation with the best class accuracy, updated as training goes).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ssr_ros.config import config_to_dict, param, validate_config
from ssr_ros.devices import resolve_device
from ssr_ros.errors import ConfigError
from ssr_ros.regularization.data_cost import FREE_LABEL, DataCostConfig, crop_chunk, network_input
from ssr_ros.regularization.network import LearnedRegularizer, RegularizerNetworkConfig
from ssr_ros.regularization.scenes import RoomCaptureConfig, RoomVolume, cached_room
from ssr_ros.regularization.weights import save_regularizer
from ssr_ros.training_run import TrainingRun, cosine_decay


@dataclass
class RegularizerDataConfig:
    """Which rooms and how crops are cut from them."""

    train_seeds: list = param([0, 1, 2, 3, 4, 5], "room seeds used for training")
    val_seeds: list = param([1000], "room seeds used for validation (never for training)")
    capture: RoomCaptureConfig = field(default_factory=RoomCaptureConfig)
    crop_size: int = param(16, "training crop side, voxels (multiple of 2^max(scales-1, context_levels))", low=4, high=256)
    min_observed_fraction: float = param(0.05, "crops need this fraction of observed voxels", low=0.0, high=1.0)
    augment: bool = param(True, "flip and turn crops about the vertical axis", )

    def validate(self) -> "RegularizerDataConfig":
        validate_config(self)
        self.capture.validate()
        overlap = set(map(int, self.train_seeds)) & set(map(int, self.val_seeds))
        if overlap:
            raise ConfigError(f"val_seeds {sorted(overlap)} are also train_seeds; validation rooms must be unseen")
        if not self.train_seeds:
            raise ConfigError("train_seeds is empty")
        return self


@dataclass
class RegularizerLossConfig:
    occupied_weight: float = param(4.0, "weight of GT-occupied voxels against free ones", low=0.0, high=1000.0)
    class_weight: float = param(
        1.0, "weight of the class term: cross-entropy over the classes alone (free space left out) on "
        "GT-occupied voxels, the label the map shows for a surface voxel", low=0.0, high=1000.0,
    )
    unobserved_class_weight: float = param(
        0.0, "extra weight of the class term on GT surface voxels (occupied, next to free space) without data "
        "cost (unobserved): they count 1 + this; the label the map shows there comes from the regulariser alone",
        low=0.0, high=1000.0,
    )
    class_balance: float = param(
        0.0, "weight each class in the class term by its frequency in the training rooms to this power, "
        "negated (0 = unweighted, 0.5 = inverse square root, 1 = inverse frequency); rare classes count "
        "for more, as they do in the mIoU", low=0.0, high=2.0,
    )


@dataclass
class RegularizerOptimConfig:
    steps: int = param(600, "optimisation steps", low=1, high=10_000_000)
    batch_size: int = param(4, "crops per step", low=1, high=256)
    learning_rate: float = param(3e-3, "Adam learning rate (cosine decay to 10%)", low=1e-7, high=1.0)
    context_learning_rate: float = param(
        0.0, "learning rate of the class context's few parameters (0 = learning_rate); fine-tuning a trained "
        "network with a small learning_rate leaves them nearly fixed otherwise", low=0.0, high=1.0,
    )
    warmup_steps: int = param(20, "steps over which the learning rate rises linearly to its value", low=0, high=10_000_000)
    grad_clip: float = param(1.0, "gradient norm clip (0 = off)", low=0.0, high=1e6)
    log_every: int = param(10, "steps between log lines", low=1, high=100000)
    validate_every: int = param(100, "steps between validations (0 = only at the end)", low=0, high=10_000_000)
    checkpoint_every: int = param(50, "steps between checkpoints", low=1, high=10_000_000)
    validation_crops: int = param(16, "fixed crops of the validation rooms scored at each validation", low=1, high=10000)
    keep_snapshots: bool = param(
        False, "also write the weights at every validation to OUT/snapshots/step-N.pt (to choose among them on "
        "the validation rooms with benchmarks/regularizer_select.py)",
    )


@dataclass
class RegularizerTrainingConfig:
    """Everything ``ssr train-regularizer`` needs."""

    out_dir: str = param("out/train_regularizer", "output directory (log, checkpoint, weights, room cache)")
    device: str = param("cpu", "torch device: 'cpu', 'cuda', 'cuda:N' or 'auto'")
    seed: int = param(0, "random seed of crops and initialisation", low=0, high=2**31 - 1)
    init_weights: str = param(
        "", "start from these regulariser weights (a file of load_regularizer); parameters the file lacks "
        "(layers added since) keep their initialisation; empty = random start",
    )
    threads: int = param(0, "CPU threads for torch (0 = torch's default)", low=0, high=256)
    data: RegularizerDataConfig = field(default_factory=RegularizerDataConfig)
    network: RegularizerNetworkConfig = field(default_factory=RegularizerNetworkConfig)
    data_cost: DataCostConfig = field(default_factory=DataCostConfig)
    loss: RegularizerLossConfig = field(default_factory=RegularizerLossConfig)
    optim: RegularizerOptimConfig = field(default_factory=RegularizerOptimConfig)

    def validate(self) -> "RegularizerTrainingConfig":
        validate_config(self)
        self.data.validate()
        if self.network.dims != 3:
            raise ConfigError("network.dims must be 3 for training on rooms")
        multiple = self.network.size_multiple
        if self.data.crop_size % multiple:
            raise ConfigError(f"data.crop_size={self.data.crop_size} must be a multiple of "
                              f"2^max(scales-1, context_levels)={multiple}")
        return self


@dataclass
class RegularizerTrainingResult:
    losses: list
    validation: list
    seconds: float
    weights_path: Path | None


def crop_origins(room: RoomVolume, size: int, count: int, min_observed: float, rng: random.Random) -> list[tuple]:
    """Up to ``count`` random crop starts whose crop has at least ``min_observed`` observed voxels."""
    shape = room.labels.shape
    if min(shape) < size:
        raise ConfigError(f"room {room.name} of {tuple(shape)} voxels is smaller than crop_size={size}")
    out, tries = [], 0
    while len(out) < count and tries < 50 * count:
        tries += 1
        start = tuple(rng.randrange(0, n - size + 1) for n in shape)
        sl = tuple(slice(s, s + size) for s in start)
        if float(room.chunk.observed[sl].float().mean()) >= min_observed:
            out.append(start)
    return out


def crop_sample(room: RoomVolume, start: tuple, size: int, config: RegularizerTrainingConfig, rng: random.Random | None):
    """(features (L+2, s, s, s), labels (s, s, s) int64, weight (s, s, s), surface (s, s, s) bool: GT
    surface voxels) of one crop, augmented when ``rng``."""
    sl = tuple(slice(s, s + size) for s in start)
    chunk = crop_chunk(room.chunk, start, (size,) * 3)
    features = network_input(chunk, config.data_cost)
    labels = room.labels[sl]
    weight = room.in_room[sl].to(torch.float32) * torch.where(labels > 0, config.loss.occupied_weight, 1.0)
    surface = room.surface[sl]
    if rng is not None and config.data.augment:
        if rng.random() < 0.5:
            features, labels, weight, surface = features.flip(1), labels.flip(0), weight.flip(0), surface.flip(0)
        if rng.random() < 0.5:
            features, labels, weight, surface = features.flip(2), labels.flip(1), weight.flip(1), surface.flip(1)
        if rng.random() < 0.5:  # quarter turn about z: swap x and y
            features, labels, weight, surface = (features.transpose(1, 2), labels.transpose(0, 1),
                                                 weight.transpose(0, 1), surface.transpose(0, 1))
    return features.contiguous(), labels.contiguous(), weight.contiguous(), surface.contiguous()


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over voxels weighted by ``weight`` (B, *grid)."""
    per_voxel = F.cross_entropy(logits, labels, reduction="none")
    return (per_voxel * weight).sum() / weight.sum().clamp(min=1.0)


def class_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, counted: torch.Tensor,
                        class_weights: torch.Tensor | None = None, voxel_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of the classes alone (free space left out) over the ``counted`` voxels
    whose label is a class: how well the surface label is chosen, whatever the occupancy.
    ``class_weights``: (L - 1,) weight of each class (a weighted mean), or None; ``voxel_weight``:
    (B, *grid) weight of each voxel on top of it, or None."""
    occupied = counted & (labels > FREE_LABEL)
    if not bool(occupied.any()):
        return logits.sum() * 0.0
    class_logits = logits[:, FREE_LABEL + 1:].movedim(1, -1)[occupied]
    target = labels[occupied] - (FREE_LABEL + 1)
    if voxel_weight is None:
        return F.cross_entropy(class_logits, target, weight=class_weights)
    w = voxel_weight[occupied] * (1.0 if class_weights is None else class_weights[target])
    return (F.cross_entropy(class_logits, target, reduction="none") * w).sum() / w.sum().clamp(min=1e-12)


def balanced_class_weights(rooms: list[RoomVolume], num_labels: int, power: float) -> torch.Tensor | None:
    """(L - 1,) weights ``frequency^-power`` of the classes over the rooms' in-room occupied voxels,
    scaled so that their mean over those voxels is 1 (classes absent from the rooms: 1); None
    when ``power`` is 0."""
    if power <= 0:
        return None
    counts = torch.zeros(num_labels, dtype=torch.float64)
    for room in rooms:
        counts += torch.bincount(room.labels[room.in_room].flatten(), minlength=num_labels)[:num_labels].double()
    counts = counts[FREE_LABEL + 1:]
    present = counts > 0
    weights = torch.ones_like(counts)
    weights[present] = (counts[present] / counts[present].sum()) ** -power
    weights[present] /= (weights[present] * counts[present]).sum() / counts[present].sum()
    return weights.to(torch.float32)


def regularizer_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor,
                     config: RegularizerLossConfig, class_weights: torch.Tensor | None = None,
                     unobserved: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted cross-entropy over all labels plus ``class_weight`` x :func:`class_cross_entropy`,
    whose voxels in ``unobserved`` (B, *grid) bool (training: unobserved GT surface voxels) count
    ``1 + unobserved_class_weight``."""
    loss = weighted_cross_entropy(logits, labels, weight)
    if config.class_weight > 0:
        voxel_weight = None
        if unobserved is not None and config.unobserved_class_weight > 0:
            voxel_weight = 1.0 + config.unobserved_class_weight * unobserved.to(logits.dtype)
        loss = loss + config.class_weight * class_cross_entropy(logits, labels, weight > 0, class_weights, voxel_weight)
    return loss


def start_from(model: LearnedRegularizer, path: str) -> None:
    """Load the weights at ``path`` into ``model``; only parameters of layers the file predates
    may be missing. ConfigError when the file does not fit the network."""
    from ssr_ros.regularization.weights import load_regularizer

    state = load_regularizer(path).state_dict()
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        raise ConfigError(f"init_weights '{path}' do not fit the network: {error}") from error
    foreign = [k for k in missing if not k.startswith("context.")] + list(unexpected)
    if foreign:
        raise ConfigError(f"init_weights '{path}' do not fit the network (missing or extra: {foreign[:5]})")


def _batch(samples, device):
    return tuple(torch.stack(parts).to(device) for parts in zip(*samples))


@torch.no_grad()
def validate_model(model, samples, device) -> dict:
    """Weighted loss and voxel accuracy (in-room voxels; GT-occupied voxels alone) on fixed crops;
    ``class_accuracy``: the most likely class (free space left out) on GT-occupied voxels."""
    model.eval()
    loss_sum = weight_sum = correct = total = occ_correct = occ_total = class_correct = 0.0
    for i in range(0, len(samples), 4):
        features, labels, weight, _ = _batch(samples[i:i + 4], device)
        logits = model(features)
        loss_sum += float(weighted_cross_entropy(logits, labels, weight) * weight.sum())
        weight_sum += float(weight.sum())
        pred = logits.argmax(1)
        counted = weight > 0
        correct += float(((pred == labels) & counted).sum())
        total += float(counted.sum())
        occ = counted & (labels > 0)
        occ_correct += float(((pred == labels) & occ).sum())
        occ_total += float(occ.sum())
        class_pred = logits[:, FREE_LABEL + 1:].argmax(1) + FREE_LABEL + 1
        class_correct += float(((class_pred == labels) & occ).sum())
    model.train()
    return {"loss": loss_sum / max(weight_sum, 1.0), "accuracy": correct / max(total, 1.0),
            "occupied_accuracy": occ_correct / max(occ_total, 1.0),
            "class_accuracy": class_correct / max(occ_total, 1.0)}


def train_regularizer(
    config: RegularizerTrainingConfig, resume: bool = False, progress: bool = True, command: str = "",
    num_classes: int = 21, class_names: list[str] | None = None,
) -> RegularizerTrainingResult:
    """Train (or resume) the learned regulariser; see the module docstring for the outputs."""
    from tqdm import tqdm

    from ssr_ros.taxonomy import ClassTaxonomy

    config.validate()
    if class_names is None:
        taxonomy = ClassTaxonomy.load(None)
        class_names, num_classes = taxonomy.names, taxonomy.num_classes
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    run = TrainingRun(config.out_dir, resume)
    out = run.out_dir
    best_path = out / "best.pt"
    start_time = time.perf_counter()
    rooms = [cached_room(s, config.data.capture, out / "rooms", num_classes)
             for s in tqdm(config.data.train_seeds, desc="train rooms", disable=not progress)]
    val_rooms = [cached_room(s, config.data.capture, out / "rooms", num_classes)
                 for s in tqdm(config.data.val_seeds, desc="val rooms", disable=not progress)]
    size = config.data.crop_size
    val_rng = random.Random(12345)
    val_samples = []
    per_room = max(1, math.ceil(config.optim.validation_crops / max(len(val_rooms), 1)))
    for room in val_rooms:
        for start in crop_origins(room, size, per_room, config.data.min_observed_fraction, val_rng):
            val_samples.append(crop_sample(room, start, size, config, None))

    class_weights = balanced_class_weights(rooms, num_classes, config.loss.class_balance)
    if class_weights is not None:
        class_weights = class_weights.to(device)
    torch.manual_seed(config.seed)
    model = LearnedRegularizer(num_classes, config.network)
    if config.init_weights:
        start_from(model, config.init_weights)
    model = model.to(device)
    context = [p for n, p in model.named_parameters() if n.startswith("context.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("context.")]
    context_scale = (config.optim.context_learning_rate / config.optim.learning_rate
                     if config.optim.context_learning_rate > 0 else 1.0)
    groups = [{"params": rest, "scale": 1.0}] + ([{"params": context, "scale": context_scale}] if context else [])
    optimizer = torch.optim.Adam(groups, lr=config.optim.learning_rate)
    steps = config.optim.steps

    def lr_at(step: int) -> float:
        warmup = min(1.0, (step + 1) / config.optim.warmup_steps) if config.optim.warmup_steps else 1.0
        return warmup * config.optim.learning_rate * cosine_decay(step / steps, 0.1)

    rng = random.Random(config.seed)
    step = 0
    losses: list[float] = []
    validation: list[dict] = []
    best_accuracy = -1.0
    if resume:
        ckpt = run.load_checkpoint()
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        losses = list(ckpt["losses"])
        best_accuracy = float(ckpt.get("best_class_accuracy", -1.0))
        rng.seed(config.seed + step)
        torch.manual_seed(config.seed + step)

    def checkpoint() -> None:
        run.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                             "losses": losses, "best_class_accuracy": best_accuracy, "config": config_to_dict(config)})

    capture = config.data.capture

    def save(path: Path, **extra) -> None:
        save_regularizer(
            model, path, config.data_cost, capture.voxel_size, capture.map.truncation, class_names,
            metadata={"steps": step, "train_seeds": json.dumps(list(map(int, config.data.train_seeds))),
                      "label_source": capture.label_source, "command": command,
                      "final_loss": float(sum(losses[-10:]) / max(len(losses[-10:]), 1)) if losses else float("nan"),
                      **extra},
        )

    if step == 0:
        run.log({"event": "start", "command": command, "parameters": model.num_parameters(),
                 "config": config_to_dict(config)})
    model.train()
    window: list[float] = []
    with tqdm(total=steps, initial=step, desc="train", disable=not progress) as bar:
        while step < steps:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step) * group.get("scale", 1.0)
            samples = []
            while len(samples) < config.optim.batch_size:
                room = rooms[rng.randrange(len(rooms))]
                starts = crop_origins(room, size, 1, config.data.min_observed_fraction, rng)
                if starts:
                    samples.append(crop_sample(room, starts[0], size, config, rng))
            features, labels, weight, surface = _batch(samples, device)
            unobserved_surface = surface & (features[:, num_classes] <= 0)  # no data cost (strength 0)
            loss = regularizer_loss(model(features), labels, weight, config.loss, class_weights, unobserved_surface)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
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
            if val_samples and ((config.optim.validate_every and step % config.optim.validate_every == 0) or step == steps):
                record = {"step": step, **validate_model(model, val_samples, device)}
                validation.append(record)
                run.log({"validation": record})
                if config.optim.keep_snapshots:
                    save(out / "snapshots" / f"step-{step}.pt", validation_class_accuracy=record["class_accuracy"])
                if record["class_accuracy"] > best_accuracy:
                    best_accuracy = record["class_accuracy"]
                    save(best_path, validation_class_accuracy=best_accuracy)
            if step % config.optim.checkpoint_every == 0 or step == steps:
                checkpoint()
    save(run.weights_path)
    return RegularizerTrainingResult(losses, validation, time.perf_counter() - start_time, run.weights_path)
