"""``RegularizedLabels``: the regulariser's labels, kept beside the map's fused evidence.

A sparse set of voxels (global index), each with a class id, a confidence in [0, 1] and
whether the fused map observed it (a regularised view of an observed label) or not (a label
the regulariser inferred where nothing was measured). The map's own layers are never changed
through this object, so observed and inferred labels stay distinguishable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ssr_ros.atomic_file import atomic_write
from ssr_ros.errors import MapFileError

REGULARIZED_FILE = "regularized_labels.npz"
_OFFSET = 1 << 20  # voxel indices in [-2^20, 2^20) pack into one int64 key


def _keys(voxels: torch.Tensor) -> torch.Tensor:
    v = voxels.to(torch.int64) + _OFFSET
    return (v[:, 0] << 42) | (v[:, 1] << 21) | v[:, 2]


class RegularizedLabels:
    """voxels (N, 3) int64, label (N,) int64, confidence (N,) float32, observed (N,) bool, on ``device``."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.voxels = torch.zeros((0, 3), dtype=torch.int64, device=self.device)
        self.label = torch.zeros(0, dtype=torch.int64, device=self.device)
        self.confidence = torch.zeros(0, dtype=torch.float32, device=self.device)
        self.observed = torch.zeros(0, dtype=torch.bool, device=self.device)

    def __len__(self) -> int:
        return int(self.label.numel())

    def replace_box(self, lo, hi, voxels: torch.Tensor, label: torch.Tensor, confidence: torch.Tensor,
                    observed: torch.Tensor) -> None:
        """Drop the entries inside the box ``lo <= v < hi`` (global voxel indices) and add the given ones."""
        lo = torch.as_tensor(lo, dtype=torch.int64, device=self.device)
        hi = torch.as_tensor(hi, dtype=torch.int64, device=self.device)
        keep = ~((self.voxels >= lo) & (self.voxels < hi)).all(dim=1)
        self.voxels = torch.cat([self.voxels[keep], voxels.to(self.device, torch.int64)])
        self.label = torch.cat([self.label[keep], label.to(self.device, torch.int64)])
        self.confidence = torch.cat([self.confidence[keep], confidence.to(self.device, torch.float32)])
        self.observed = torch.cat([self.observed[keep], observed.to(self.device, torch.bool)])

    def lookup(self, voxels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Values at ``voxels (M, 3)``: found (M,) bool, label (0 where not found), confidence, observed."""
        voxels = voxels.to(self.device, torch.int64)
        found = torch.zeros(len(voxels), dtype=torch.bool, device=self.device)
        label = torch.zeros(len(voxels), dtype=torch.int64, device=self.device)
        confidence = torch.zeros(len(voxels), dtype=torch.float32, device=self.device)
        observed = torch.zeros(len(voxels), dtype=torch.bool, device=self.device)
        if len(self) and len(voxels):
            keys, order = torch.sort(_keys(self.voxels))
            query = _keys(voxels)
            pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
            found = keys[pos] == query
            idx = order[pos]
            label = torch.where(found, self.label[idx], label)
            confidence = torch.where(found, self.confidence[idx], confidence)
            observed = found & self.observed[idx]
        return {"found": found, "label": label, "confidence": confidence, "observed": observed}

    def save(self, path: str | Path) -> Path:
        """Atomic ``.npz`` with voxels, label (uint8), confidence (float16), observed."""
        with atomic_write(path, "regularized labels") as handle:
            np.savez_compressed(
                handle, voxels=self.voxels.cpu().numpy().astype(np.int32),
                label=self.label.cpu().numpy().astype(np.uint8),
                confidence=self.confidence.cpu().numpy().astype(np.float16),
                observed=self.observed.cpu().numpy(),
            )
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "RegularizedLabels":
        try:
            with np.load(path, allow_pickle=False) as data:
                store = cls(device)
                store.voxels = torch.as_tensor(data["voxels"].astype(np.int64), device=store.device).reshape(-1, 3)
                store.label = torch.as_tensor(data["label"].astype(np.int64), device=store.device)
                store.confidence = torch.as_tensor(data["confidence"].astype(np.float32), device=store.device)
                store.observed = torch.as_tensor(data["observed"], device=store.device)
        except (OSError, KeyError, ValueError) as error:
            raise MapFileError(f"cannot read regularized labels '{path}': {error}") from error
        return store
