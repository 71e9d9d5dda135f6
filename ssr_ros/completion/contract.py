"""The contract between the map and a completion model, stored in the weights file.

A network learned on chunks of one voxel size, with one truncation, one class list and one
"up" direction. Its weights file records them (:class:`ModelContract`) and the pipeline
checks them against the map it is asked to complete (:func:`check_contract`): what can be
adapted is adapted (a different truncation is handled by normalising the map's TSDF with
the model's truncation), what cannot is refused with an error naming both values.

The contract also carries the model's *calibration*: the logistic map from the network's
normalised TSDF to a probability that the voxel is occupied, fitted on held-out rooms
(``ssr calibrate-completion``), and the confidence threshold chosen there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch

from ssr_ros.completion.symmetry import SYMMETRY_COUNTS
from ssr_ros.errors import ConfigError

GRAVITY_Z_UP = "z_up"
"""The map frame's +z points against gravity (REP 103); generated rooms are captured so."""

INPUT_OBSERVED = "observed"
"""Geometry input mask = fused voxels only (weights of format version 1)."""
INPUT_KNOWN = "known"
"""Geometry input mask = fused voxels or voxels seen free along camera rays."""

VOXEL_SIZE_TOLERANCE = 0.02
"""Relative voxel-size difference accepted between map and model (geometry is learned in voxels)."""


@dataclass(frozen=True)
class Calibration:
    """The model's confidences, fitted on held-out rooms (``ssr calibrate-completion``).

    - ``P(occupied) = sigmoid(scale * (-tsdf / truncation) + bias)``: how likely a predicted
      voxel is occupied (the confidence of predicted free voxels is ``1 - P``).
    - ``P(surface right)``: how likely a predicted *surface* voxel lies on a real surface, a
      logistic model over the gate's features of that voxel (``surface_features``, see
      :data:`ssr_ros.completion.gating.SURFACE_FEATURES`), with ``surface_weights`` = one
      weight per feature then the bias. Without it (older calibrations) a surface voxel's
      confidence is its ``P(occupied)``.

    ``min_confidence`` is the smallest surface confidence at which predicted surface reached
    the ``target_precision`` there (1 when it never did; then nothing is worth writing), with
    the network averaged over ``symmetries`` of each chunk's symmetries about the vertical axis
    (:mod:`ssr_ros.completion.symmetry`): the confidences hold for that many.
    """

    scale: float = 8.0
    bias: float = 0.0
    min_confidence: float = 0.5
    target_precision: float = 0.85
    fitted_on: str = ""
    surface_features: tuple[str, ...] = ()
    surface_weights: tuple[float, ...] = ()
    symmetries: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "surface_features", tuple(str(n) for n in self.surface_features))
        object.__setattr__(self, "surface_weights", tuple(float(w) for w in self.surface_weights))
        object.__setattr__(self, "symmetries", int(self.symmetries))
        if self.symmetries not in SYMMETRY_COUNTS:
            raise ValueError(f"symmetries {self.symmetries}; expected one of {SYMMETRY_COUNTS}")
        if self.surface_features and len(self.surface_weights) != len(self.surface_features) + 1:
            raise ValueError(
                f"surface_weights has {len(self.surface_weights)} values; expected one per surface feature "
                f"({len(self.surface_features)}) and a bias"
            )

    def occupancy_probability(self, tsdf: torch.Tensor, truncation: float) -> torch.Tensor:
        """(...) probability that each voxel is occupied, from predicted TSDF in metres."""
        return torch.sigmoid(self.scale * (-tsdf / truncation) + self.bias)

    def surface_probability(self, features: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """(...) probability that predicted surface voxels lie on a real surface, from the gate's
        per-voxel ``features`` (name -> tensor, all one shape); None without a surface model."""
        if not self.surface_features:
            return None
        missing = [n for n in self.surface_features if n not in features]
        if missing:
            raise ConfigError(f"calibration needs surface features {missing} that this ssr_ros does not compute")
        logit = torch.full_like(features[self.surface_features[0]], self.surface_weights[-1], dtype=torch.float32)
        for name, weight in zip(self.surface_features, self.surface_weights):
            logit = logit + weight * features[name].to(torch.float32)
        return torch.sigmoid(logit)


UNCALIBRATED = Calibration(fitted_on="")
"""A steep default around the surface level, used until ``ssr calibrate-completion`` ran."""


@dataclass(frozen=True)
class ModelContract:
    """What a completion model expects of the map it completes."""

    voxel_size: float
    truncation: float
    chunk_size: int
    num_classes: int
    class_names: tuple[str, ...] = ()
    geometry_input: str = INPUT_KNOWN
    gravity: str = GRAVITY_Z_UP
    calibration: Calibration = field(default_factory=Calibration)

    @property
    def truncation_voxels(self) -> float:
        return self.truncation / self.voxel_size

    @property
    def calibrated(self) -> bool:
        return bool(self.calibration.fitted_on)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["class_names"] = list(self.class_names)
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "ModelContract":
        try:
            values = dict(document)
            values["class_names"] = tuple(str(n) for n in values.get("class_names", ()))
            values["calibration"] = Calibration(**dict(values.get("calibration", {})))
            contract = cls(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"model contract is malformed: {error}") from error
        if contract.geometry_input not in (INPUT_OBSERVED, INPUT_KNOWN):
            raise ConfigError(f"model contract geometry_input {contract.geometry_input!r}; expected 'observed' or 'known'")
        if contract.gravity != GRAVITY_Z_UP:
            raise ConfigError(f"model contract gravity {contract.gravity!r}; this ssr_ros knows only '{GRAVITY_Z_UP}'")
        return contract

    def with_calibration(self, calibration: Calibration) -> "ModelContract":
        values = asdict(self)
        values["class_names"] = self.class_names
        values["calibration"] = calibration
        return ModelContract(**values)


LEGACY_CONTRACT = dict(voxel_size=0.05, truncation=0.15, chunk_size=32, geometry_input=INPUT_OBSERVED)
"""What weights of format version 1 were trained with (their model card: 5 cm voxels,
truncation 3 voxels, 32^3 chunks, fused voxels as the input mask)."""


def check_contract(
    contract: ModelContract,
    voxel_size: float,
    truncation: float,
    class_names: Sequence[str],
    chunk_size: int,
    size_multiple: int,
) -> list[str]:
    """Check a map and chunking against ``contract``; returns notes on what was adapted.

    Raises ConfigError when the voxel size differs by more than 2 %, the class count or
    names differ, or the chunk side is not a multiple the network can take. A different
    map truncation is adapted (the caller normalises with ``contract.truncation``).
    """
    notes = []
    if not math.isclose(voxel_size, contract.voxel_size, rel_tol=VOXEL_SIZE_TOLERANCE):
        raise ConfigError(
            f"the completion model was trained on {contract.voxel_size:g} m voxels but the map has "
            f"{voxel_size:g} m voxels; set map.voxel_size: {contract.voxel_size:g} or use weights "
            f"trained at {voxel_size:g} m (or completion.type: none)"
        )
    if len(class_names) != contract.num_classes:
        raise ConfigError(
            f"the completion model predicts {contract.num_classes} classes but the map's taxonomy has "
            f"{len(class_names)}; use the taxonomy the model was trained with"
        )
    if contract.class_names and tuple(class_names) != contract.class_names:
        differ = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(class_names, contract.class_names)) if a != b]
        raise ConfigError(f"the map's class names differ from the completion model's ({', '.join(differ[:3])})")
    if chunk_size % size_multiple:
        raise ConfigError(f"completion.chunk_size {chunk_size} must be a multiple of {size_multiple} for this network")
    if not math.isclose(truncation, contract.truncation, rel_tol=1e-3):
        notes.append(
            f"map truncation {truncation:g} m normalised with the model's {contract.truncation:g} m"
        )
    if chunk_size != contract.chunk_size:
        notes.append(f"chunks of {chunk_size}^3 voxels; the model was trained on {contract.chunk_size}^3")
    return notes
