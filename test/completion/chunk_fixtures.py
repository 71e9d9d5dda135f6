"""Small synthetic chunks shared by the completion tests."""

import torch

from ssr_ros.map.chunk import DenseChunk


def make_chunk(size=(16, 16, 16), num_classes=21, voxel_size=0.05, truncation=0.15, origin=(0, 0, 0), seed=0):
    """A chunk holding a floor plane at z = 4 voxels, observed only for x < size/2."""
    generator = torch.Generator().manual_seed(seed)
    X, Y, Z = size
    k = torch.arange(Z, dtype=torch.float32)
    z = (k + 0.5) * voxel_size
    tsdf = (z - 4 * voxel_size).clamp(-truncation, truncation).expand(X, Y, Z).clone()
    observed = torch.zeros(size, dtype=torch.bool)
    observed[: X // 2] = True
    tsdf[~observed] = truncation
    color = torch.rand(*size, 3, generator=generator) * observed[..., None]
    semantics = torch.zeros(*size, num_classes)
    semantics[..., 2] = observed.float()
    return DenseChunk(
        origin_voxel=torch.tensor(origin, dtype=torch.int64),
        voxel_size=voxel_size,
        truncation=truncation,
        tsdf=tsdf,
        weight=observed.float(),
        observed=observed,
        color=color,
        semantics=semantics,
        predicted=torch.zeros(size, dtype=torch.bool),
    )
