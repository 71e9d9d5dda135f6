"""Exact ground truth of a synthetic scene: dense voxel volumes and the visible-surface mesh.

Voxel grid convention (the map's): global voxel index ``v`` covers
``[v * s, (v + 1) * s)`` of the world frame, centre ``(v + 0.5) * s``. A ``GTVolume`` starts
at global voxel ``origin_voxel``, so its metric origin is a multiple of ``voxel_size`` and it
can be compared voxel-for-voxel with the map's dense chunks. Arrays are indexed
``[i, j, k]`` = voxel ``origin_voxel + (i, j, k)`` (x, y, z).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssr_ros.data.synthetic.materials import albedo, shade
from ssr_ros.data.synthetic.primitives import box_sdf, union_sdf
from ssr_ros.errors import DatasetError, InvalidInput
from ssr_ros.geometry.camera import CameraIntrinsics

CONTACT_DISTANCE = 0.01
"""Mesh faces with another solid or the outside of the room within this distance in front
of them (metres) are hidden contact faces (a cabinet's back on a wall, a leg's foot on the
floor) and are left out of the GT mesh."""


OCCUPANCY_TOLERANCE = 1e-3
"""Relative margin that settles float round-off for surfaces exactly half a voxel from centres."""


@dataclass
class GTVolume:
    """Dense ground truth on a voxel grid.

    origin_voxel: (3,) int64 global index of voxel [0, 0, 0].
    voxel_size: edge length, metres.
    sdf: (X, Y, Z) float32 signed distance of voxel centres to the surface, metres
        (negative inside walls and furniture).
    occupied: (X, Y, Z) bool, ``sdf < voxel_size / 2``: the centre is inside a solid or
        closer than half a voxel to one (the solid interior plus the voxels the surface cuts
        through; a surface lying exactly on a voxel face, like a grid-aligned wall, belongs
        to the voxels on the solid side).
    class_ids: (X, Y, Z) int32 taxonomy class of occupied voxels (nearest box), 0 elsewhere.
    instance_ids: (X, Y, Z) int32 object instance of occupied voxels, 0 elsewhere.
    in_room: (X, Y, Z) bool, centre within one voxel of the room interior (the part of the
        grid a camera inside the room can ever see; the usual evaluation region).
    """

    origin_voxel: np.ndarray
    voxel_size: float
    sdf: np.ndarray
    occupied: np.ndarray
    class_ids: np.ndarray
    instance_ids: np.ndarray
    in_room: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.sdf.shape)  # type: ignore[return-value]

    @property
    def origin(self) -> np.ndarray:
        """(3,) metric position of the corner of voxel [0, 0, 0], metres."""
        return self.origin_voxel.astype(np.float64) * self.voxel_size

    def centers(self) -> np.ndarray:
        """(X, Y, Z, 3) float32 world centres of all voxels."""
        axes = [np.arange(n, dtype=np.float64) for n in self.shape]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        return ((grid + self.origin_voxel + 0.5) * self.voxel_size).astype(np.float32)

    def save(self, path: str | Path, **extra: np.ndarray) -> None:
        """Write a compressed ``.npz`` with every field, plus ``extra`` arrays (e.g. ``visible``)."""
        np.savez_compressed(
            path, origin_voxel=self.origin_voxel, voxel_size=np.float64(self.voxel_size), sdf=self.sdf,
            occupied=self.occupied, class_ids=self.class_ids, instance_ids=self.instance_ids, in_room=self.in_room,
            **extra,
        )

    @classmethod
    def load(cls, path: str | Path) -> "GTVolume":
        try:
            with np.load(path) as f:
                return cls(
                    origin_voxel=f["origin_voxel"].astype(np.int64), voxel_size=float(f["voxel_size"]), sdf=f["sdf"],
                    occupied=f["occupied"], class_ids=f["class_ids"], instance_ids=f["instance_ids"], in_room=f["in_room"],
                )
        except (OSError, KeyError, ValueError) as error:
            raise DatasetError(f"cannot read GT volume '{path}': {error}") from error


def grid_for_bounds(lo: np.ndarray, hi: np.ndarray, voxel_size: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Global voxel index of the first voxel and the grid shape covering the box ``[lo, hi]``."""
    lo_v = np.floor(np.asarray(lo, dtype=np.float64) / voxel_size + 1e-9).astype(np.int64)
    hi_v = np.ceil(np.asarray(hi, dtype=np.float64) / voxel_size - 1e-9).astype(np.int64)
    shape = np.maximum(hi_v - lo_v, 1)
    return lo_v, tuple(int(n) for n in shape)


def gt_volume(scene, voxel_size: float, bounds: tuple | None = None, device: torch.device | str = "cpu") -> GTVolume:
    """Exact SDF, occupancy, class and instance of ``scene`` on the grid of ``voxel_size``.

    bounds: ``(lo, hi)`` world box in metres to cover (snapped outwards to the voxel grid);
    default: the whole scene including the wall slabs.
    """
    if not (voxel_size > 0 and np.isfinite(voxel_size)):
        raise InvalidInput(f"voxel_size must be positive and finite, got {voxel_size}")
    lo, hi = scene.bounds() if bounds is None else (np.asarray(bounds[0], float), np.asarray(bounds[1], float))
    if np.any(np.asarray(hi) <= np.asarray(lo)):
        raise InvalidInput(f"bounds must satisfy lo < hi, got lo={list(lo)}, hi={list(hi)}")
    origin_voxel, shape = grid_for_bounds(lo, hi, voxel_size)
    if int(np.prod(shape)) > 200_000_000:
        raise InvalidInput(f"GT volume of {shape} voxels is too large; use a larger voxel_size or smaller bounds")
    axes = [torch.arange(n, dtype=torch.float64, device=device) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    centers = ((grid + torch.as_tensor(origin_voxel, dtype=torch.float64, device=device) + 0.5) * voxel_size).float()
    t = scene.torch_boxes(device)
    sdf, nearest = union_sdf(centers, t["centers"], t["half_extents"], t["rotations"])
    sdf = sdf.cpu().numpy().reshape(shape)
    nearest = nearest.cpu().numpy().reshape(shape)
    occupied = sdf < voxel_size / 2 * (1 - OCCUPANCY_TOLERANCE)
    class_ids = np.where(occupied, scene.boxes.class_ids[nearest], 0).astype(np.int32)
    instance_ids = np.where(occupied, scene.boxes.instance_ids[nearest], 0).astype(np.int32)
    c = centers.cpu().numpy().reshape(shape + (3,))
    room_lo, room_hi = scene.interior_bounds()
    in_room = np.all((c > room_lo - voxel_size) & (c < room_hi + voxel_size), axis=-1)
    return GTVolume(origin_voxel, float(voxel_size), sdf.astype(np.float32), occupied, class_ids, instance_ids, in_room)


@dataclass
class GTMesh:
    """Triangle mesh of the surface visible from inside the room.

    vertices: (V, 3) float32 world positions, metres. faces: (F, 3) int64 vertex indices,
    counter-clockwise seen from outside the solid (normals point into free space).
    vertex_class: (V,) int32 taxonomy class. vertex_instance: (V,) int32 instance id.
    vertex_colors: (V, 3) uint8 shaded surface color.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_class: np.ndarray
    vertex_instance: np.ndarray
    vertex_colors: np.ndarray

    def save_ply(self, path: str | Path) -> None:
        """Binary PLY with vertex colors and a ``label`` / ``instance`` vertex property."""
        from plyfile import PlyData, PlyElement

        vertex = np.empty(len(self.vertices), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("label", "u2"), ("instance", "u4")])
        vertex["x"], vertex["y"], vertex["z"] = self.vertices.T
        vertex["red"], vertex["green"], vertex["blue"] = self.vertex_colors.T
        vertex["label"] = self.vertex_class
        vertex["instance"] = self.vertex_instance
        face = np.empty(len(self.faces), dtype=[("vertex_indices", "i4", (3,))])
        face["vertex_indices"] = self.faces
        PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")], text=False).write(str(path))


def gt_mesh(scene, resolution: float = 0.05) -> GTMesh:
    """The scene's visible surface as quads of at most ``resolution`` metres, split in triangles.

    Every box face is subdivided into a grid; quads that lie inside another box, touch one
    (see ``CONTACT_DISTANCE``) or face the outside of the room are dropped, so the mesh is
    the boundary of the union of all solids as seen from the room.
    """
    if not (resolution > 0 and np.isfinite(resolution)):
        raise InvalidInput(f"mesh resolution must be positive and finite, got {resolution}")
    boxes = scene.boxes
    corners = boxes.corners()  # (N, 8, 3)
    room_lo, room_hi = scene.interior_bounds()
    room_corners = np.array([[x, y, z] for x in (room_lo[0], room_hi[0]) for y in (room_lo[1], room_hi[1]) for z in (room_lo[2], room_hi[2])])
    verts, faces, vbox, vaxis, quad_centres, quad_normals, quad_box = [], [], [], [], [], [], []
    offset = 0
    for b in range(len(boxes)):
        h, R, c = boxes.half_extents[b], boxes.rotations[b], boxes.centers[b]
        # other solids (and the room boundary) in this box's frame, for grid lines along their edges
        others_local = (np.concatenate([corners[np.arange(len(boxes)) != b].reshape(-1, 8, 3), room_corners[None]]) - c) @ R
        others_lo, others_hi = others_local.min(axis=1), others_local.max(axis=1)
        for axis in range(3):
            a1, a2 = (axis + 1) % 3, (axis + 2) % 3
            for sign in (-1.0, 1.0):
                plane = sign * h[axis]
                near = (others_lo[:, axis] <= plane + CONTACT_DISTANCE + 1e-6) & (others_hi[:, axis] >= plane - 1e-6)
                near[-1] = True  # the room boundary always cuts
                g1 = _grid_lines(h[a1], resolution, np.concatenate([others_lo[near, a1], others_hi[near, a1]]))
                g2 = _grid_lines(h[a2], resolution, np.concatenate([others_lo[near, a2], others_hi[near, a2]]))
                n1, n2 = len(g1) - 1, len(g2) - 1
                G1, G2 = np.meshgrid(g1, g2, indexing="ij")
                local = np.zeros((n1 + 1, n2 + 1, 3))
                local[..., axis] = plane
                local[..., a1], local[..., a2] = G1, G2
                world = local.reshape(-1, 3) @ R.T + c
                idx = np.arange((n1 + 1) * (n2 + 1)).reshape(n1 + 1, n2 + 1) + offset
                q00, q10, q01, q11 = idx[:-1, :-1], idx[1:, :-1], idx[:-1, 1:], idx[1:, 1:]
                # (a1, a2, axis) is right-handed, so (q00, q10, q11) is CCW around +axis
                tri = np.stack([np.stack([q00, q10, q11], -1), np.stack([q00, q11, q01], -1)], axis=2).reshape(-1, 3)
                if sign < 0:
                    tri = tri[:, ::-1]
                centre_local = (local[:-1, :-1] + local[1:, 1:]) / 2
                normal = R[:, axis] * sign
                verts.append(world)
                faces.append(tri)
                vbox.append(np.full(len(world), b))
                vaxis.append(np.full(len(world), axis))
                qc = centre_local.reshape(-1, 3) @ R.T + c
                quad_centres.append(np.repeat(qc, 2, axis=0))
                quad_normals.append(np.repeat(normal[None], 2 * len(qc), axis=0))
                quad_box.append(np.full(2 * len(qc), b))
                offset += len(world)
    vertices = np.concatenate(verts)
    faces_all = np.concatenate(faces)
    tri_box = np.concatenate(quad_box)
    probe = np.concatenate(quad_centres) + CONTACT_DISTANCE * np.concatenate(quad_normals)
    # keep a triangle when its probe point is in free space inside the room
    t = scene.torch_boxes("cpu")
    pts = torch.as_tensor(probe, dtype=torch.float32)
    blocked = np.zeros(len(probe), dtype=bool)
    step = max(1, (1 << 20) // max(1, len(boxes)))
    for start in range(0, len(pts), step):
        d = box_sdf(pts[start : start + step], t["centers"], t["half_extents"], t["rotations"])
        own = torch.as_tensor(tri_box[start : start + step])
        d[torch.arange(len(own)), own] = float("inf")
        blocked[start : start + step] = (d.min(dim=1).values <= 0).numpy()
    outside = np.any((probe < room_lo) | (probe > room_hi), axis=1)
    keep = ~blocked & ~outside
    faces_kept = faces_all[keep]
    used, inverse = np.unique(faces_kept.reshape(-1), return_inverse=True)
    vertices = vertices[used].astype(np.float32)
    box_of_vertex = np.concatenate(vbox)[used]
    axis_of_vertex = np.concatenate(vaxis)[used]
    colors = _vertex_colors(scene, vertices, box_of_vertex, axis_of_vertex)
    return GTMesh(
        vertices=vertices,
        faces=inverse.reshape(-1, 3).astype(np.int64),
        vertex_class=boxes.class_ids[box_of_vertex].astype(np.int32),
        vertex_instance=boxes.instance_ids[box_of_vertex].astype(np.int32),
        vertex_colors=colors,
    )


def _grid_lines(half: float, resolution: float, cuts: np.ndarray) -> np.ndarray:
    """Sorted coordinates in [-half, half]: a uniform grid of at most ``resolution`` plus ``cuts``."""
    n = max(1, int(np.ceil(2 * half / resolution)))
    lines = np.concatenate([np.linspace(-half, half, n + 1), cuts[(cuts > -half) & (cuts < half)]])
    lines = np.unique(np.round(lines, 9))
    keep = np.concatenate([[True], np.diff(lines) > 1e-6])
    return lines[keep]


def _vertex_colors(scene, vertices: np.ndarray, box: np.ndarray, axis: np.ndarray) -> np.ndarray:
    from ssr_ros.data.synthetic.materials import face_coordinates

    boxes = scene.boxes
    if len(vertices) == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    world = torch.as_tensor(vertices, dtype=torch.float32)
    R = torch.as_tensor(boxes.rotations[box], dtype=torch.float32)
    c = torch.as_tensor(boxes.centers[box], dtype=torch.float32)
    h = torch.as_tensor(boxes.half_extents[box], dtype=torch.float32)
    local = torch.einsum("pj,pji->pi", world - c, R)
    ax = torch.as_tensor(axis, dtype=torch.int64)
    u, v = face_coordinates(local, ax, h)
    normal_local = torch.zeros_like(local)
    normal_local.scatter_(1, ax[:, None], torch.sign(local.gather(1, ax[:, None])))
    normal = torch.einsum("pij,pj->pi", R, normal_local)

    def col(a):
        return torch.as_tensor(a[box])

    rgb = albedo(col(boxes.materials), col(boxes.colors), col(boxes.secondary_colors), col(boxes.pattern_scales), col(boxes.pattern_seeds), u, v, world)
    rgb = shade(rgb, world, normal, torch.as_tensor(scene.light_position, dtype=torch.float32))
    return np.round(rgb.numpy() * 255).astype(np.uint8)


def visible_voxels(
    volume: GTVolume,
    depths: list[np.ndarray],
    poses: list[np.ndarray],
    intrinsics: CameraIntrinsics,
    margin: float | None = None,
) -> np.ndarray:
    """(X, Y, Z) bool: voxels a camera path has seen, the "observed" part of the scene.

    A voxel is seen by a frame when its centre projects inside the image onto a valid depth
    pixel and lies in front of the measured surface or at most ``margin`` behind it (default:
    one voxel). depths: (H, W) metres (0 = invalid); poses: (4, 4) camera-to-world.
    """
    margin = volume.voxel_size if margin is None else float(margin)
    centers = torch.as_tensor(volume.centers().reshape(-1, 3))
    seen = torch.zeros(len(centers), dtype=torch.bool)
    for depth, pose in zip(depths, poses):
        T = torch.as_tensor(np.linalg.inv(np.asarray(pose, dtype=np.float64)), dtype=torch.float32)
        cam = centers @ T[:3, :3].T + T[:3, 3]
        uv, z = intrinsics.project(cam)
        u = torch.round(uv[:, 0])
        v = torch.round(uv[:, 1])
        inside = (z > 0) & (u >= 0) & (u < intrinsics.width) & (v >= 0) & (v < intrinsics.height)
        ui = torch.where(inside, u, torch.zeros_like(u)).long()
        vi = torch.where(inside, v, torch.zeros_like(v)).long()
        d = torch.as_tensor(np.asarray(depth, dtype=np.float32))[vi, ui]
        seen |= inside & (d > 0) & (z <= d + margin)
    return seen.numpy().reshape(volume.shape)
