"""Shape-prior weights: a versioned dict read with ``torch.load(weights_only=True)``.

Layout::

    {"format": "ssr_ros.shape_prior", "version": 1, "model_type": "shape_prior_unet",
     "network": {ShapePriorNetworkConfig fields},
     "contract": {"class_names": [prior classes, in class-index order],
                  "extents": {class: metres}, "gravity": "z_up", "frame": "x width, y front, z up"},
     "state_dict": {...}, "metadata": {str: str | int | float}}

``class_names`` are taxonomy names: a map's class id is matched to the prior's class index by
name, so any taxonomy that names these classes works.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ssr_ros.atomic_file import atomic_write
from ssr_ros.completion.weights import read_component_weights
from ssr_ros.config import config_from_dict
from ssr_ros.errors import ConfigError, MapFileError
from ssr_ros.objects.network import ShapePriorNet, ShapePriorNetworkConfig
from ssr_ros.objects.shape_classes import ShapeGrid, shape_grid
from ssr_ros.package_files import SOURCE_ROOT, find_package_file

FORMAT = "ssr_ros.shape_prior"
VERSION = 1
MODEL_TYPE = "shape_prior_unet"
DEFAULT_WEIGHTS = "shape_prior_small.pt"
ROOMS_WEIGHTS = "shape_prior_rooms.pt"
ROOMS_EARLY_WEIGHTS = "shape_prior_rooms2.pt"
GRAVITY = "z_up"


def _packaged(name: str) -> Path:
    return find_package_file("models", name) or SOURCE_ROOT / "models" / name


def default_shape_prior_weights() -> Path:
    """The packaged prior trained on simulated views (source checkout, else the ROS share directory)."""
    return _packaged(DEFAULT_WEIGHTS)


def default_shape_prior_set() -> list[Path]:
    """The packaged priors the object stage uses together by default: the one trained on simulated
    views, and two continued on the instances of fused rooms (the first stage of that training and
    its continuation; ``SHAPE_PRIOR_MODEL_CARD.md``)."""
    return [_packaged(DEFAULT_WEIGHTS), _packaged(ROOMS_EARLY_WEIGHTS), _packaged(ROOMS_WEIGHTS)]


class ShapePrior:
    """A loaded prior: the network plus its contract (class names, extents)."""

    def __init__(self, model: ShapePriorNet, class_names: list[str], extents: dict[str, float],
                 metadata: dict[str, Any] | None = None) -> None:
        self.model = model
        self.class_names = list(class_names)
        self.extents = {k: float(v) for k, v in extents.items()}
        self.metadata = dict(metadata or {})

    def class_index(self, name: str) -> int | None:
        """The prior's index of taxonomy class ``name``; None when the prior has no such class."""
        return self.class_names.index(name) if name in self.class_names else None

    def grid(self, name: str) -> ShapeGrid:
        return shape_grid(self.extents[name], self.model.config.grid_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def members(self) -> list["ShapePrior"]:
        """The networks that complete each object: this one."""
        return [self]


class ShapePriorSet(ShapePrior):
    """Several priors of one contract (class names, extents): every member completes each object and
    the alignment keeps the completed shape that fits the object's observation best (a deterministic
    prior's stand-in for drawing several shapes from a generative one). Class names, extents and
    grids are the members' common ones."""

    def __init__(self, members: list[ShapePrior]) -> None:
        if not members:
            raise ConfigError("a shape prior set needs at least one prior")
        first = members[0]
        for other in members[1:]:
            if other.class_names != first.class_names or other.extents != first.extents \
                    or other.model.config.grid_size != first.model.config.grid_size:
                raise ConfigError("shape priors used together must share class names, class extents and grid size")
        super().__init__(first.model, first.class_names, first.extents, first.metadata)
        self._members = list(members)

    @property
    def members(self) -> list[ShapePrior]:
        return list(self._members)


def save_shape_prior(model: ShapePriorNet, path: str | Path, class_names: list[str], extents: dict[str, float],
                     metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` with its contract; atomic."""
    if len(class_names) != model.num_classes:
        raise ConfigError(f"{len(class_names)} class names for a model of {model.num_classes} classes")
    document = {
        "format": FORMAT, "version": VERSION, "model_type": MODEL_TYPE,
        "network": dataclasses.asdict(model.config),
        "contract": {"class_names": list(class_names), "extents": {k: float(extents[k]) for k in class_names},
                     "gravity": GRAVITY, "frame": "x width, y front, z up; origin on the floor"},
        "state_dict": {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    with atomic_write(path, "shape prior weights") as handle:
        torch.save(document, handle)
    return Path(path)


def load_shape_prior(path: str | Path, device: str | torch.device = "cpu") -> ShapePrior:
    """The prior stored at ``path`` (eval mode, on ``device``). MapFileError when the file is
    not shape-prior weights or its parts disagree."""
    path = Path(path)
    document = read_component_weights(path, FORMAT, VERSION, MODEL_TYPE, "shape prior")
    try:
        contract = dict(document["contract"])
        if contract.get("gravity") != GRAVITY:
            raise ConfigError(f"gravity convention {contract.get('gravity')!r}; expected {GRAVITY!r}")
        network = config_from_dict(ShapePriorNetworkConfig, document["network"])
        model = ShapePriorNet(len(contract["class_names"]), network)
        model.load_state_dict(document["state_dict"])
    except (KeyError, RuntimeError, ConfigError) as error:
        raise MapFileError(f"shape prior weights '{path}' are inconsistent: {error}") from error
    return ShapePrior(model.to(device).eval(), contract["class_names"], contract["extents"], document.get("metadata"))


def load_shape_priors(paths: list[str | Path], device: str | torch.device = "cpu") -> ShapePriorSet:
    """The priors stored at ``paths``, used together (:class:`ShapePriorSet`); a bad file or
    priors of different contracts are refused (MapFileError / ConfigError)."""
    return ShapePriorSet([load_shape_prior(p, device) for p in paths])
