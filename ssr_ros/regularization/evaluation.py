"""Scoring a labelling of a generated room against its exact labels.

The semantic label a method gives a voxel is its most likely *class* (free space excluded):
the label the map would show if the voxel is surface. Scores are taken over the room's GT
surface voxels (occupied voxels next to free space inside the room), split into those the
fused input observed and those it did not (no data cost there; plain fusion has no label,
which counts as wrong). mIoU averages the IoU of the classes present in the GT surface;
overall accuracy is the share of surface voxels labelled right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ssr_ros.evaluation.semantics import confusion_matrix, scores_from_confusion
from ssr_ros.regularization.data_cost import FREE_LABEL
from ssr_ros.regularization.scenes import RoomVolume

REGIONS = ("observed", "all", "unobserved")
"""GT surface voxels the input observed, all of them, and those it did not."""


def class_labels(u: torch.Tensor, strength: torch.Tensor | None = None, min_mass: float = 1e-3) -> torch.Tensor:
    """(X, Y, Z) int64 most likely class (>= 1) of a labelling ``u: (L, X, Y, Z)`` (indicators or
    probabilities); 0 (no label) where the classes hold less than ``min_mass`` and, when
    ``strength`` is given, the voxel has no data cost either (nothing to decide a class by)."""
    classes = u[FREE_LABEL + 1:]
    label = classes.argmax(0) + 1
    empty = classes.sum(0) < min_mass
    if strength is not None:
        empty &= strength <= 0
    return torch.where(empty, torch.zeros_like(label), label)


def region_masks(room: RoomVolume) -> dict[str, np.ndarray]:
    surface = room.surface.numpy()
    observed = room.chunk.observed.numpy()
    return {"observed": surface & observed, "all": surface, "unobserved": surface & ~observed}


@dataclass
class SurfaceScores:
    """Confusion matrices per region, accumulated over rooms."""

    num_classes: int
    confusion: dict = field(default_factory=dict)

    def add(self, labels: torch.Tensor, room: RoomVolume) -> None:
        """Count ``labels: (X, Y, Z)`` int class ids (0 = no label) of ``room``."""
        pred = labels.detach().cpu().numpy()
        gt = room.labels.numpy()
        for name, mask in region_masks(room).items():
            c = confusion_matrix(pred, gt, self.num_classes, mask)
            self.confusion[name] = self.confusion.get(name, 0) + c

    def summary(self) -> dict:
        """{region: {"miou": %, "accuracy": %, "voxels": n}}."""
        out = {}
        for name in REGIONS:
            c = self.confusion.get(name)
            if c is None:
                continue
            total = int(c[1:].sum())
            acc = float(np.trace(c[1:, 1:]) / total) if total else float("nan")
            out[name] = {"miou": 100.0 * scores_from_confusion(c).miou, "accuracy": 100.0 * acc, "voxels": total}
        return out
