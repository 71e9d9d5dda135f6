"""Incremental marching cubes over the block-sparse grid, with per-vertex color and semantics.

Each block owns the cubes whose lowest corner is one of its voxels, so meshing block ``b``
reads its ``B^3`` voxels plus the first layer of its +x/+y/+z neighbours: a
``(B + 1)^3`` grid of voxel centres. Neighbouring blocks evaluate the shared faces from the
same voxel values, so the surface has no cracks at block borders. A cube is meshed only when
its eight corners are known (fused weight > 0, or predicted when ``include_predicted``).

The dirty blocks of all changed regions are stacked along x into one volume and meshed by
one call of scikit-image's Lewiner marching cubes; triangles of cubes that straddle two
stacked blocks or touch unknown voxels are dropped afterwards. When a block changes, the
blocks at -x/-y/-z (whose cubes read its voxels) are re-meshed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ssr_ros.map.block_hash import COORD_MAX, COORD_MIN, pack_block_keys, unpack_block_keys
from ssr_ros.map.semantic_evidence import evidence_label


@dataclass
class BlockMesh:
    """The triangles of one block (or of the whole map when ``index`` is None).

    vertices: (N, 3) float32 metres, map frame. triangles: (M, 3) int64 indices into
    ``vertices``, counter-clockwise seen from free space (normals point out of the surface).
    colors: (N, 3) uint8 RGB. labels: (N,) int64 class ids. confidence: (N,) float32 in [0, 1].
    observed: (N,) bool, the nearest voxel is observed. predicted: (N,) bool, the nearest voxel
    was written by the completion network.
    """

    index: tuple[int, int, int] | None
    vertices: np.ndarray
    triangles: np.ndarray
    colors: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_triangles(self) -> int:
        return int(self.triangles.shape[0])

    @classmethod
    def empty(cls, index=None) -> "BlockMesh":
        return cls(
            index, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.uint8),
            np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, bool), np.zeros(0, bool),
        )

    @classmethod
    def concatenate(cls, meshes: list["BlockMesh"]) -> "BlockMesh":
        if not meshes:
            return cls.empty()
        offsets = np.cumsum([0] + [m.num_vertices for m in meshes[:-1]])
        return cls(
            None,
            np.concatenate([m.vertices for m in meshes]),
            np.concatenate([m.triangles + o for m, o in zip(meshes, offsets)]),
            np.concatenate([m.colors for m in meshes]),
            np.concatenate([m.labels for m in meshes]),
            np.concatenate([m.confidence for m in meshes]),
            np.concatenate([m.observed for m in meshes]),
            np.concatenate([m.predicted for m in meshes]),
        )


@dataclass
class MeshUpdate:
    """What changed since the previous ``update_mesh`` call.

    blocks: new meshes of the blocks whose mesh changed (non-empty), keyed by block index.
    vanished: (K, 3) int64 indices of blocks that had a mesh and now have none.
    update_counter: the map's update counter this update reflects.
    """

    blocks: dict[tuple[int, int, int], BlockMesh] = field(default_factory=dict)
    vanished: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    update_counter: int = 0

    @property
    def changed(self) -> np.ndarray:
        """(K, 3) int64 indices of the blocks in ``blocks``."""
        if not self.blocks:
            return np.zeros((0, 3), np.int64)
        return np.array(list(self.blocks.keys()), dtype=np.int64)


NEIGHBOURS_BELOW = torch.tensor(
    [[-dx, -dy, -dz] for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)][1:], dtype=torch.int64
)


@dataclass
class BlockGrids:
    """What meshing reads from the map for K blocks: the ``(B + 1)^3`` voxel grid of each block
    (its voxels and the first layer of its +x/+y/+z neighbours). Meshing the grids reads nothing
    else of the map, so give :func:`gather_block_grids` a copy of the map's blocks
    (:meth:`~ssr_ros.map.voxel_layer.VoxelLayer.snapshot`) to run the marching cubes without the
    map's lock.

    coords: (K, 3) int64 block indices. known: (K * n^3,) bool; tsdf: (K * n^3,) float32
    (normalised, 1 where unknown). slot / local: (K * n^3,) int64 where each grid voxel is stored
    in ``layer`` (slot -1: not allocated); the vertex attributes (color, semantic evidence,
    observed / predicted) are read there for the voxels the vertices need only, not decoded for
    whole grids (which cost more than the marching cubes).
    """

    coords: torch.Tensor
    block_size: int
    voxel_size: float
    known: torch.Tensor
    tsdf: torch.Tensor
    layer: object
    slot: torch.Tensor
    local: torch.Tensor


NEIGHBOURS_ABOVE = torch.tensor([[dx, dy, dz] for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)], dtype=torch.int64)
"""The block and its +x/+y/+z neighbours, index dx + 2 dy + 4 dz."""

_GRID_ADDRESSES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _grid_addresses(block_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """For each voxel of a ``(B + 1)^3`` grid: which of the 8 blocks (NEIGHBOURS_ABOVE) holds it,
    and its index inside that block (cached per block size)."""
    key = (block_size, str(device))
    if key not in _GRID_ADDRESSES:
        B, n = block_size, block_size + 1
        r = torch.arange(n, device=device)
        grid = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), dim=-1).reshape(-1, 3)  # (n^3, 3)
        which = ((grid == B).to(torch.int64) * torch.tensor([1, 2, 4], device=device)).sum(-1)  # no integer matmul on CUDA
        inner = grid % B
        _GRID_ADDRESSES[key] = which, inner[:, 0] + B * (inner[:, 1] + B * inner[:, 2])
    return _GRID_ADDRESSES[key]


def gather_block_grids(layer, block_coords: torch.Tensor, include_predicted: bool = True) -> BlockGrids:
    """The voxel grids that meshing the blocks (K, 3) of a
    :class:`~ssr_ros.map.voxel_layer.VoxelLayer` needs (8 hash lookups per block)."""
    B = layer.block_size
    device = layer.device
    K = int(block_coords.shape[0])
    which, local_of_grid = _grid_addresses(B, device)
    neighbours = (block_coords.to(device)[:, None, :] + NEIGHBOURS_ABOVE.to(device)[None]).reshape(-1, 3)
    neighbour_slots = layer.lookup(neighbours).reshape(K, 8)
    slot = neighbour_slots[:, which].reshape(-1)
    local = local_of_grid.repeat(K)
    found = slot >= 0
    s = slot.clamp(min=0)
    blocks = layer.blocks
    weight = blocks.weight[s, local]
    known = found & (weight != 0) if include_predicted else found & (weight > 0)
    tsdf = torch.where(known, blocks.tsdf[s, local].to(torch.float32), torch.ones(1, device=device))
    return BlockGrids(block_coords.clone(), B, layer.voxel_size, known, tsdf, layer, slot, local)


def mesh_blocks(layer, block_coords: torch.Tensor, include_predicted: bool = True) -> dict[tuple, BlockMesh]:
    """Marching-cubes meshes of the given blocks (K, 3) of a :class:`~ssr_ros.map.voxel_layer.VoxelLayer`;
    blocks without triangles are left out."""
    if int(block_coords.shape[0]) == 0:
        return {}
    return mesh_grids(gather_block_grids(layer, block_coords, include_predicted))


def _voxel_attributes(grids: BlockGrids, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Color (float32), label, confidence, observed and predicted of the grid voxels ``flat``
    (indices into the stacked grids); color 0 and weight 0 where the block is not allocated."""
    flat_t = torch.from_numpy(flat).to(grids.slot.device)
    slot = grids.slot[flat_t]
    found = slot >= 0
    s, l = slot.clamp(min=0), grids.local[flat_t]
    blocks = grids.layer.blocks
    weight = torch.where(found, blocks.weight[s, l].to(torch.float32), torch.zeros(1, device=slot.device))
    color = torch.where(found[:, None], blocks.color[s, l], torch.zeros(1, 3, dtype=torch.uint8, device=slot.device))
    label, confidence = evidence_label(blocks.sem_label[s, l], blocks.sem_count[s, l])
    return {
        "color": color.cpu().numpy().astype(np.float32), "label": label.cpu().numpy(),
        "confidence": confidence.cpu().numpy().astype(np.float32),
        "observed": grids.layer.observed(weight).cpu().numpy(), "predicted": (weight < 0).cpu().numpy(),
    }


def mesh_grids(grids: BlockGrids) -> dict[tuple, BlockMesh]:
    """Marching-cubes meshes of gathered block grids (reads only the grids' layer)."""
    from skimage.measure import marching_cubes

    block_coords = grids.coords
    K = int(block_coords.shape[0])
    if K == 0:
        return {}
    B = grids.block_size
    n = B + 1
    known_np = grids.known.reshape(K, n, n, n).cpu().numpy()
    volume = grids.tsdf.reshape(K * n, n, n).cpu().numpy()
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
    corner = ((block_of_face * n + cube[:, 0]) * n + cube[:, 1]) * n + cube[:, 2]
    known_flat = known_np.reshape(-1)
    corners_known = np.ones(faces.shape[0], dtype=bool)
    for offset in (0, 1, n, n + 1, n * n, n * n + 1, n * n + n, n * n + n + 1):
        corners_known &= known_flat[corner + offset]
    keep = inside & corners_known
    faces, block_of_face = faces[keep], block_of_face[keep]
    if faces.shape[0] == 0:
        return {}

    # each block's vertices: those its triangles use, in marching-cubes order (a vertex used by
    # two blocks' triangles, possible where float32 rounding puts a centroid across a block
    # border, is in both); one sort of (block, vertex) pairs instead of np.unique per block
    corner_block = np.repeat(block_of_face, 3)
    pairs, inverse = np.unique(corner_block * verts.shape[0] + faces.reshape(-1), return_inverse=True)
    pair_block, used = pairs // verts.shape[0], pairs % verts.shape[0]
    bounds = np.searchsorted(pair_block, np.arange(K + 1))
    faces = (inverse.reshape(-1) - bounds[corner_block]).reshape(-1, 3)
    verts = verts[used]
    block_of_vertex = np.floor(verts[:, 0] / n).astype(np.int64)
    local_v = verts.copy()
    local_v[:, 0] -= block_of_vertex * n
    coords_np = block_coords.cpu().numpy()
    global_v = coords_np[block_of_vertex] * B + local_v  # voxel units, voxel centres at integers
    positions = ((global_v + 0.5) * grids.voxel_size).astype(np.float32)

    # per-vertex attributes: color interpolated along the cube edge, the rest from the nearest voxel
    def flat_index(v: np.ndarray) -> np.ndarray:
        return ((block_of_vertex * n + v[:, 0]) * n + v[:, 1]) * n + v[:, 2]

    rows = np.arange(verts.shape[0])
    nearest = np.clip(np.rint(local_v).astype(np.int64), 0, B)
    lo = np.clip(np.floor(local_v).astype(np.int64), 0, B)
    frac = (local_v - lo).astype(np.float32)
    axis = np.argmax(np.abs(frac - np.rint(frac)), axis=1)  # the edge direction of the vertex
    step = np.zeros_like(lo)
    step[rows, axis] = 1
    t = frac[rows, axis][:, None]
    end = np.minimum(lo + step, B)
    m = verts.shape[0]
    attributes = _voxel_attributes(grids, np.concatenate([flat_index(nearest), flat_index(lo), flat_index(end)]))
    a, b = attributes["color"][m : 2 * m], attributes["color"][2 * m :]
    colors = np.clip(np.rint(a * (1 - t) + b * t), 0, 255).astype(np.uint8)
    label_np, conf_np = attributes["label"][:m], attributes["confidence"][:m]
    obs_np, pred_np = attributes["observed"][:m], attributes["predicted"][:m]

    face_order = np.argsort(block_of_face, kind="stable")
    faces, block_of_face = faces[face_order], block_of_face[face_order]
    face_bounds = np.searchsorted(block_of_face, np.arange(K + 1))

    result: dict[tuple, BlockMesh] = {}
    for k in np.flatnonzero(np.diff(face_bounds)).tolist():  # one iteration per block with triangles
        v = slice(bounds[k], bounds[k + 1])
        index = tuple(int(c) for c in coords_np[k])
        result[index] = BlockMesh(
            index, positions[v], faces[face_bounds[k] : face_bounds[k + 1]], colors[v],
            label_np[v], conf_np[v], obs_np[v], pred_np[v],
        )
    return result


@dataclass
class MeshSnapshot:
    """What :meth:`IncrementalMesher.prepare` copied out of the map for one update."""

    blocks: object | None
    """A :class:`~ssr_ros.map.voxel_layer.VoxelLayer` copy of the candidate blocks and their
    +x/+y/+z neighbours (what their grids are gathered from), None when nothing is to be meshed."""
    include_predicted: bool
    candidates: torch.Tensor
    gone: torch.Tensor
    update_counter: int
    generation: int


class IncrementalMesher:
    """Keeps the per-block meshes of a :class:`~ssr_ros.map.voxel_layer.VoxelLayer` and
    re-meshes only what changed: blocks stamped after the last update, and blocks marked with
    :meth:`mark_dirty` (added or removed other than by writing, e.g. evicted or reloaded).

    An update is two steps: :meth:`prepare` reads the map (call it while nothing writes to the
    map) and :meth:`finish` runs the marching cubes on the copy (the map may change meanwhile);
    :meth:`update` does both. Updates must not overlap (callers serialise them).
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.meshes: dict[tuple, BlockMesh] = {}
        self.last_counter = 0
        self._vanished_on_reset: list[tuple] = []
        self._dirty: list[torch.Tensor] = []
        self._include_predicted: bool | None = None
        self._generation = 0

    def on_reset(self) -> None:
        self._vanished_on_reset.extend(self.meshes.keys())
        self.meshes = {}
        self._dirty = []
        self._generation += 1

    def mark_dirty(self, block_coords: torch.Tensor) -> None:
        """Re-mesh these blocks (K, 3) and their -x/-y/-z neighbours at the next update; a block
        no longer allocated then loses its mesh (reported as vanished)."""
        if block_coords.shape[0]:
            self._dirty.append(block_coords.to(torch.int64).reshape(-1, 3))

    def prepare(self, include_predicted: bool = True) -> MeshSnapshot:
        """Find the blocks to re-mesh and copy them with their +x/+y/+z neighbours (reads the map)."""
        layer = self.layer
        since = self.last_counter
        if self._include_predicted is not None and include_predicted != self._include_predicted:
            since = 0  # a different layer selection invalidates every block mesh
        self._include_predicted = include_predicted
        changed = layer.changed_blocks(since)
        if self._dirty:
            changed = torch.cat([changed] + [d.to(changed.device) for d in self._dirty])
            self._dirty = []
        if changed.shape[0]:
            below = (changed[:, None, :] + NEIGHBOURS_BELOW.to(changed.device)[None]).reshape(-1, 3)
            touched = torch.cat([changed, below])
            touched = touched[((touched >= COORD_MIN) & (touched <= COORD_MAX)).all(dim=1)]
            # unique rows through their packed keys (same lexicographic order; unique(dim=0) took
            # a quarter of a second for 10,000 blocks, under the map's lock)
            touched = unpack_block_keys(torch.unique(pack_block_keys(touched)))
            allocated = layer.lookup(touched) >= 0
            candidates, gone = touched[allocated], touched[~allocated]
        else:
            candidates = gone = changed
        blocks = None
        if candidates.shape[0]:
            # a plain copy of the blocks the grids need; gathering the grids (conversions, neighbour
            # lookups) is left to finish(), without the map's lock
            blocks = layer.snapshot((candidates[:, None, :] + NEIGHBOURS_ABOVE.to(candidates.device)[None]).reshape(-1, 3))
        self.last_counter = layer.update_counter
        return MeshSnapshot(blocks, include_predicted, candidates, gone, layer.update_counter, self._generation)

    def finish(self, snapshot: MeshSnapshot) -> MeshUpdate:
        """Mesh a prepared snapshot and update the stored block meshes (does not read the map)."""
        update = MeshUpdate(update_counter=snapshot.update_counter)
        vanished = list(self._vanished_on_reset)
        self._vanished_on_reset = []
        if snapshot.generation != self._generation:  # the map was reset in between: nothing of it is current
            update.vanished = np.array(list(dict.fromkeys(vanished)), dtype=np.int64).reshape(-1, 3)
            return update
        new_meshes = {}
        if snapshot.blocks is not None:
            new_meshes = mesh_grids(gather_block_grids(snapshot.blocks, snapshot.candidates, snapshot.include_predicted))
        for coords in snapshot.candidates.cpu().numpy():
            index = tuple(int(c) for c in coords)
            mesh = new_meshes.get(index)
            if mesh is None:
                if self.meshes.pop(index, None) is not None:
                    vanished.append(index)
            else:
                self.meshes[index] = mesh
                update.blocks[index] = mesh
        for coords in snapshot.gone.cpu().numpy():
            index = tuple(int(c) for c in coords)
            if self.meshes.pop(index, None) is not None:
                vanished.append(index)
        vanished = [v for v in dict.fromkeys(vanished) if v not in self.meshes]
        update.vanished = np.array(vanished, dtype=np.int64).reshape(-1, 3)
        return update

    def update(self, include_predicted: bool = True) -> MeshUpdate:
        return self.finish(self.prepare(include_predicted))

    def full_mesh(self) -> BlockMesh:
        keys = sorted(self.meshes.keys())
        return BlockMesh.concatenate([self.meshes[k] for k in keys])
