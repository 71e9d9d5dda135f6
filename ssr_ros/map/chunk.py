"""Dense chunks: the contract between the sparse map and the completion network.

A chunk is an axis-aligned box of ``size = (X, Y, Z)`` voxels whose voxel ``[0, 0, 0]`` is
the map's global voxel ``origin_voxel``. Global voxel ``v`` (integer 3-vector) is the cube
``[v * voxel_size, (v + 1) * voxel_size)`` of the map frame, centre ``(v + 0.5) * voxel_size``.
Arrays are indexed ``[i, j, k]`` = voxel ``origin_voxel + (i, j, k)`` (x, y, z order), so a
chunk of C channels is ``(X, Y, Z, C)``; the network permutes to ``(C, X, Y, Z)`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def seen_free_space(observed: torch.Tensor, tsdf: torch.Tensor, free: torch.Tensor | None,
                    min_distance: float) -> torch.Tensor:
    """Bool volume of the space the cameras saw free: ``free`` (seen-free cells beyond the
    truncation band; None = none recorded) and observed voxels whose fused ``tsdf`` exceeds
    ``min_distance`` metres. Half a voxel counts the free side of every surface; just under the
    truncation only clearly open space."""
    free_side = observed & (tsdf > min_distance)
    return free_side if free is None else free_side | free


@dataclass
class DenseChunk:
    """Everything the map knows about a box of voxels, as dense tensors on the map's device.

    origin_voxel: (3,) int64 global index of voxel [0, 0, 0].
    voxel_size: edge length of a voxel, metres.
    truncation: TSDF truncation distance, metres.
    tsdf: (X, Y, Z) float32 metres in [-truncation, truncation]; voxels without fused
        measurements hold +truncation (the "unknown" value; see ``observed``).
    weight: (X, Y, Z) float32 fused integration weight, 0 where never observed.
    observed: (X, Y, Z) bool, weight above the map's observed threshold.
    color: (X, Y, Z, 3) float32 RGB in [0, 1], 0 where unknown.
    semantics: (X, Y, Z, N) float32 per-class probabilities over the N taxonomy classes
        (id 0 = unknown included), all zeros where the voxel has no semantic evidence.
    predicted: (X, Y, Z) bool, voxels whose values were written by the completion network.

    Optional (filled by ``SemanticTSDF.extract_chunk``, None elsewhere), what the network
    wrote earlier into the predicted voxels:
    predicted_tsdf: (X, Y, Z) float32 metres, NaN where not predicted.
    predicted_color: (X, Y, Z, 3) float32 in [0, 1], 0 where not predicted.
    predicted_label: (X, Y, Z) int64 class id, 0 where not predicted.
    predicted_confidence: (X, Y, Z) float32 in [0, 1], 0 where not predicted.
    free: (X, Y, Z) bool, voxels not observed by fusion that a camera ray crossed in front
        of a measured surface (seen free beyond the truncation band, at the resolution of the
        map's free-space cells), or None where the map keeps no free-space record. Completion
        never puts surface there.
    """

    origin_voxel: torch.Tensor
    voxel_size: float
    truncation: float
    tsdf: torch.Tensor
    weight: torch.Tensor
    observed: torch.Tensor
    color: torch.Tensor
    semantics: torch.Tensor
    predicted: torch.Tensor
    predicted_tsdf: torch.Tensor | None = None
    predicted_color: torch.Tensor | None = None
    predicted_label: torch.Tensor | None = None
    predicted_confidence: torch.Tensor | None = None
    free: torch.Tensor | None = None

    def known(self) -> torch.Tensor:
        """(X, Y, Z) bool: observed (fused) or seen free; the rest is unknown space."""
        return self.observed if self.free is None else self.observed | self.free

    def seen_free(self, min_distance: float) -> torch.Tensor:
        """(X, Y, Z) bool: space the cameras saw free (see :func:`seen_free_space`)."""
        return seen_free_space(self.observed, self.tsdf, self.free, min_distance)

    @property
    def size(self) -> tuple[int, int, int]:
        return tuple(self.tsdf.shape)  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self.tsdf.device

    def voxel_centers(self) -> torch.Tensor:
        """(X, Y, Z, 3) float32 map-frame centres of the chunk's voxels, metres."""
        X, Y, Z = self.size
        axes = [torch.arange(n, device=self.device, dtype=torch.float32) for n in (X, Y, Z)]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        return (grid + self.origin_voxel.to(torch.float32) + 0.5) * self.voxel_size
