"""Object instance evidence of the map, from per-pixel 2D instance ids (online instance fusion).

A frame's instance image says which pixels belong to the same object *in that frame*; its ids
mean nothing from one frame to the next. :class:`InstanceEvidence` turns them into map-wide
instances:

1. each pixel with valid depth and a non-zero id is back-projected to the voxel holding its
   surface point; each frame instance becomes a set of voxels (a *segment*);
2. a segment is associated with the map instance that already holds the largest share of its
   voxels when that share reaches ``min_overlap`` (one map instance per segment, one segment
   per map instance, greedy by share); otherwise it starts a new map instance. A voxel counts
   as held when it or a face neighbour is (depth noise moves surface points across voxels). A
   segment that overlaps a second map instance by ``min_overlap`` too merges it into the first
   (a view that sees two sides of an object at once joins what earlier views kept apart);
3. each voxel of the segment votes for the instance: the voxel keeps one instance id and a
   vote counter (a vote for its id adds one, a vote for another id takes one off and replaces
   the id when the counter reaches zero), the majority-vote scheme of the semantic labels.

Storage is sparse and only covers voxels that some instance pixel fell into (object surfaces):
sorted int64 voxel keys, int32 instance ids and int16 votes, 14 bytes per such voxel. The
evidence stays in memory when blocks of the map are evicted (it is small next to them), and is
saved with the map.
"""

from __future__ import annotations

import numpy as np

_BITS = 21
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1
MAX_VOTES = 1000
_NEIGHBOURS = np.array([0, 1, -1, 1 << _BITS, -(1 << _BITS), 1 << (2 * _BITS), -(1 << (2 * _BITS))], dtype=np.int64)
"""Key offsets of a voxel and its six face neighbours."""


def voxel_keys(index: np.ndarray) -> np.ndarray:
    """(N,) int64 keys of global voxel indices (N, 3) (each axis within +-2^20)."""
    index = np.asarray(index, dtype=np.int64) + _OFFSET
    return (index[:, 0] << (2 * _BITS)) | (index[:, 1] << _BITS) | index[:, 2]


def key_voxels(keys: np.ndarray) -> np.ndarray:
    """(N, 3) int64 global voxel indices of keys (N,)."""
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([(keys >> (2 * _BITS)) & _MASK, (keys >> _BITS) & _MASK, keys & _MASK], axis=1) - _OFFSET


class InstanceEvidence:
    """Per-voxel instance id with a vote counter, for the voxels instance pixels fell into."""

    def __init__(self, voxel_size: float, min_overlap: float = 0.3, min_pixels: int = 50) -> None:
        self.voxel_size = float(voxel_size)
        self.min_overlap = float(min_overlap)
        self.min_pixels = int(min_pixels)
        self.keys = np.zeros(0, dtype=np.int64)
        self.ids = np.zeros(0, dtype=np.int32)
        self.votes = np.zeros(0, dtype=np.int16)
        self.next_id = 1

    @property
    def num_voxels(self) -> int:
        return int(self.keys.size)

    def memory_bytes(self) -> int:
        return int(self.keys.nbytes + self.ids.nbytes + self.votes.nbytes)

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for the map file."""
        return {"instance_keys": self.keys, "instance_ids": self.ids, "instance_votes": self.votes,
                "instance_next_id": np.array([self.next_id], dtype=np.int64)}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        keys, ids, votes = (np.asarray(arrays[k]) for k in ("instance_keys", "instance_ids", "instance_votes"))
        if not (keys.shape == ids.shape == votes.shape) or keys.ndim != 1:
            raise ValueError(f"instance arrays disagree in shape: {keys.shape}, {ids.shape}, {votes.shape}")
        if keys.size > 1 and not np.all(keys[1:] > keys[:-1]):
            raise ValueError("instance keys are not strictly sorted")
        self.keys, self.ids, self.votes = keys.astype(np.int64), ids.astype(np.int32), votes.astype(np.int16)
        self.next_id = int(np.asarray(arrays["instance_next_id"]).reshape(-1)[0])

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """(N,) int32 instance id of voxel keys (0 = no evidence)."""
        keys = np.asarray(keys, dtype=np.int64)
        if self.keys.size == 0:
            return np.zeros(keys.shape, dtype=np.int32)
        pos = np.clip(np.searchsorted(self.keys, keys), 0, self.keys.size - 1)
        return np.where(self.keys[pos] == keys, self.ids[pos], 0).astype(np.int32)

    def segments(self, depth: np.ndarray, instance_ids: np.ndarray, intrinsics, T_world_cam: np.ndarray,
                 min_depth: float, max_depth: float) -> list[np.ndarray]:
        """Voxel key sets (unique int64 arrays) of a frame's instances with at least
        ``min_pixels`` valid pixels, in order of their 2D id."""
        depth = np.asarray(depth, dtype=np.float32)
        ids = np.asarray(instance_ids).astype(np.int64, copy=False)
        valid = np.isfinite(depth) & (depth > min_depth) & (depth < max_depth) & (ids > 0)
        v, u = np.nonzero(valid)
        if v.size == 0:
            return []
        z = depth[v, u].astype(np.float64)
        x, y, z = intrinsics.unproject(u.astype(np.float64), v.astype(np.float64), z)
        T = np.asarray(T_world_cam, dtype=np.float64)
        world = np.stack([x, y, z], axis=1) @ T[:3, :3].T + T[:3, 3]
        keys = voxel_keys(np.floor(world / self.voxel_size).astype(np.int64))
        pix_ids = ids[v, u]
        order = np.argsort(pix_ids, kind="stable")
        pix_ids, keys = pix_ids[order], keys[order]
        starts = np.flatnonzero(np.r_[True, pix_ids[1:] != pix_ids[:-1]])
        ends = np.r_[starts[1:], pix_ids.size]
        return [np.unique(keys[a:b]) for a, b in zip(starts, ends) if b - a >= self.min_pixels]

    def integrate(self, depth, instance_ids, intrinsics, T_world_cam, min_depth: float, max_depth: float) -> int:
        """Fuse one frame's instance image; returns the number of segments fused."""
        segments = self.segments(depth, instance_ids, intrinsics, T_world_cam, min_depth, max_depth)
        if not segments:
            return 0
        # association: share of each segment's voxels that a map instance holds (the voxel or a
        # face neighbour: depth noise moves a surface point to the next voxel)
        candidates = []
        for s, keys in enumerate(segments):
            near = self.lookup(keys[:, None] + _NEIGHBOURS[None, :])
            rows, cols = np.nonzero(near)
            if rows.size == 0:
                continue
            pairs = np.unique(rows.astype(np.int64) << 32 | near[rows, cols].astype(np.int64))
            inst, counts = np.unique(pairs & 0xFFFFFFFF, return_counts=True)
            for m, c in zip(inst, counts):
                share = c / keys.size
                if share >= self.min_overlap:
                    candidates.append((share, s, int(m)))
        candidates.sort(reverse=True)
        assigned: dict[int, int] = {}
        taken: set[int] = set()
        for share, s, m in candidates:
            if s in assigned or m in taken:
                continue
            assigned[s] = m
            taken.add(m)
        # a segment that overlaps two map instances enough shows they are one object: merge
        merge: dict[int, int] = {}
        for share, s, m in candidates:
            if s in assigned and m != assigned[s] and m not in taken and m not in merge:
                merge[m] = assigned[s]
        if merge and self.ids.size:
            table = np.arange(max(self.next_id, int(self.ids.max()) + 1), dtype=np.int32)
            for old, new in merge.items():
                table[old] = new
            self.ids = table[self.ids]
        for s in range(len(segments)):
            if s not in assigned:
                assigned[s] = self.next_id
                self.next_id += 1
        all_keys = np.concatenate(segments)
        all_ids = np.concatenate([np.full(k.size, assigned[s], dtype=np.int32) for s, k in enumerate(segments)])
        # a voxel two segments of one frame fell into votes once, for the first
        all_keys, first = np.unique(all_keys, return_index=True)
        all_ids = all_ids[first]
        self._vote(all_keys, all_ids)
        return len(segments)

    def _vote(self, keys: np.ndarray, ids: np.ndarray) -> None:
        pos = np.searchsorted(self.keys, keys)
        present = np.zeros(keys.size, dtype=bool)
        inside = pos < self.keys.size
        present[inside] = self.keys[pos[inside]] == keys[inside]
        p = pos[present]
        same = self.ids[p] == ids[present]
        votes = self.votes[p].astype(np.int32)
        votes = np.where(same, np.minimum(votes + 1, MAX_VOTES), votes - 1)
        replaced = votes <= 0
        self.ids[p] = np.where(replaced, ids[present], self.ids[p])
        self.votes[p] = np.where(replaced, 1, votes).astype(np.int16)
        new_keys = keys[~present]
        if new_keys.size:
            at = pos[~present]
            self.keys = np.insert(self.keys, at, new_keys)
            self.ids = np.insert(self.ids, at, ids[~present])
            self.votes = np.insert(self.votes, at, np.ones(new_keys.size, dtype=np.int16))

    def region_ids(self, origin_voxel: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """(X, Y, Z) int32 instance id of the voxels of a dense box (0 = no evidence)."""
        out = np.zeros(shape, dtype=np.int32)
        if self.keys.size == 0:
            return out
        idx = key_voxels(self.keys) - np.asarray(origin_voxel, dtype=np.int64)
        inside = np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1)
        idx = idx[inside]
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = self.ids[inside]
        return out
