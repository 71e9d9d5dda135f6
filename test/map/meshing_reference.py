"""The meshing code before vertex attributes were read per vertex: every block grid's colors and
semantic evidence decoded, then one ``np.unique`` per block. Kept only as the reference the
tests compare the current :mod:`ssr_ros.map.meshing` with (outputs must stay equal)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ssr_ros.map.meshing import NEIGHBOURS_ABOVE, BlockMesh
from ssr_ros.map.semantic_evidence import evidence_label


def reference_mesh_blocks(layer, block_coords: torch.Tensor, include_predicted: bool = True) -> dict:
    if int(block_coords.shape[0]) == 0:
        return {}
    return mesh_grids(gather_block_grids(layer, block_coords, include_predicted))


def gather_block_grids(layer, block_coords: torch.Tensor, include_predicted: bool = True) -> SimpleNamespace:
    """Copy the voxel grids that meshing the blocks (K, 3) of a
    :class:`~ssr_ros.map.voxel_layer.VoxelLayer` needs (8 hash lookups per block)."""
    B = layer.block_size
    n = B + 1
    device = layer.device
    K = int(block_coords.shape[0])
    r = torch.arange(n, device=device)
    grid = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), dim=-1).reshape(-1, 3)  # (n^3, 3)
    which = (grid == B).to(torch.int64) @ torch.tensor([1, 2, 4], device=device)  # neighbour of each grid voxel
    inner = grid % B
    local_of_grid = inner[:, 0] + B * (inner[:, 1] + B * inner[:, 2])
    neighbours = (block_coords.to(device)[:, None, :] + NEIGHBOURS_ABOVE.to(device)[None]).reshape(-1, 3)
    neighbour_slots = layer.lookup(neighbours).reshape(K, 8)
    slot = neighbour_slots[:, which].reshape(-1)
    local = local_of_grid.repeat(K)
    found = slot >= 0
    s, l = slot.clamp(min=0), local
    blocks = layer.blocks
    weight = torch.where(found, blocks.weight[s, l].to(torch.float32), torch.zeros(1, device=device))
    known = weight > 0
    if include_predicted:
        known |= weight < 0
    tsdf = torch.where(known, blocks.tsdf[s, l].to(torch.float32), torch.ones(1, device=device))
    color = torch.where(found[:, None], blocks.color[s, l], torch.zeros(1, 3, dtype=torch.uint8, device=device))
    return SimpleNamespace(coords=block_coords.clone(), block_size=B, voxel_size=layer.voxel_size, known=known, tsdf=tsdf,
                           observed=layer.observed(weight), predicted=weight < 0, color=color,
                           sem_label=blocks.sem_label[s, l], sem_count=blocks.sem_count[s, l])


def mesh_grids(grids) -> dict[tuple, BlockMesh]:
    """Marching-cubes meshes of gathered block grids (needs no access to the map)."""
    from skimage.measure import marching_cubes

    block_coords = grids.coords
    K = int(block_coords.shape[0])
    if K == 0:
        return {}
    B = grids.block_size
    n = B + 1
    known = grids.known
    tsdf = grids.tsdf
    known_np = known.reshape(K, n, n, n).cpu().numpy()
    volume = tsdf.reshape(K * n, n, n).cpu().numpy()
    if not (volume.min() < 0.0 < volume.max()):
        return {}
    verts, faces, _, _ = marching_cubes(volume, level=0.0, gradient_direction="descent", allow_degenerate=False)
    if faces.shape[0] == 0:
        return {}
    # cube of each triangle (floor of its centroid), then keep cubes inside one block with 8 known corners
    centroid = verts[faces].mean(axis=1)
    cube = np.floor(centroid).astype(np.int64)
    block_of_face = cube[:, 0] // n
    cube[:, 0] -= block_of_face * n
    cube = np.clip(cube, 0, n - 1)
    inside = (cube < B).all(axis=1)
    cube = np.minimum(cube, B - 1)
    corners_known = np.ones(faces.shape[0], dtype=bool)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                corners_known &= known_np[block_of_face, cube[:, 0] + dx, cube[:, 1] + dy, cube[:, 2] + dz]
    keep = inside & corners_known
    faces, block_of_face = faces[keep], block_of_face[keep]
    if faces.shape[0] == 0:
        return {}

    # per-vertex attributes: color interpolated along the cube edge, the rest from the nearest voxel
    block_of_vertex = np.floor(verts[:, 0] / n).astype(np.int64)
    local_v = verts.copy()
    local_v[:, 0] -= block_of_vertex * n
    coords_np = block_coords.cpu().numpy()
    global_v = coords_np[block_of_vertex] * B + local_v  # voxel units, voxel centres at integers
    positions = ((global_v + 0.5) * grids.voxel_size).astype(np.float32)
    nearest = np.clip(np.rint(local_v).astype(np.int64), 0, B)
    flat = ((block_of_vertex * n + nearest[:, 0]) * n + nearest[:, 1]) * n + nearest[:, 2]
    flat_t = torch.from_numpy(flat).to(grids.tsdf.device)
    label, confidence = evidence_label(grids.sem_label[flat_t], grids.sem_count[flat_t])
    observed = grids.observed[flat_t]
    predicted = grids.predicted[flat_t]
    lo = np.clip(np.floor(local_v).astype(np.int64), 0, B)
    hi = np.clip(lo + 1, 0, B)
    frac = (local_v - lo).astype(np.float32)
    color_grid = grids.color.reshape(K, n, n, n, 3).cpu().numpy().astype(np.float32)
    axis = np.argmax(np.abs(frac - np.rint(frac)), axis=1)  # the edge direction of the vertex
    step = np.zeros_like(lo)
    step[np.arange(lo.shape[0]), axis] = 1
    t = frac[np.arange(lo.shape[0]), axis][:, None]
    a = color_grid[block_of_vertex, lo[:, 0], lo[:, 1], lo[:, 2]]
    end = np.minimum(lo + step, B)
    b = color_grid[block_of_vertex, end[:, 0], end[:, 1], end[:, 2]]
    colors = np.clip(np.rint(a * (1 - t) + b * t), 0, 255).astype(np.uint8)
    label_np = label.cpu().numpy()
    conf_np = confidence.cpu().numpy().astype(np.float32)
    obs_np = observed.cpu().numpy()
    pred_np = predicted.cpu().numpy()
    del hi

    result: dict[tuple, BlockMesh] = {}
    order = np.argsort(block_of_face, kind="stable")
    faces, block_of_face = faces[order], block_of_face[order]
    bounds = np.searchsorted(block_of_face, np.arange(K + 1))
    for k in np.unique(block_of_face):  # one iteration per block with triangles
        f = faces[bounds[k] : bounds[k + 1]]
        used, inverse = np.unique(f.reshape(-1), return_inverse=True)
        index = tuple(int(c) for c in coords_np[k])
        result[index] = BlockMesh(
            index, positions[used], inverse.reshape(-1, 3).astype(np.int64), colors[used],
            label_np[used], conf_np[used], obs_np[used], pred_np[used],
        )
    return result
