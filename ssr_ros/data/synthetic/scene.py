"""The synthetic ``Scene``: a furnished room made of oriented boxes, with exact semantics.

World frame: z up (REP 103), floor top at z = 0, the room interior is the box
``[0, W] x [0, D] x [0, H]``; walls, floor and ceiling are slabs of ``wall_thickness``
outside it. Every box belongs to an object (instance id > 0) with one taxonomy class; the
ceiling has class 0 (the ScanNet-20 taxonomy has no ceiling class).

A scene answers the questions training and evaluation ask:

- ``render(T_world_cam, intrinsics)`` -> ``RenderedView`` (depth, rgb, class, instance,
  normals), see ``renderer``;
- ``gt_volume(voxel_size, bounds=None)`` -> ``GTVolume`` (SDF, occupancy, class, instance on
  the map's voxel grid), see ``ground_truth``;
- ``gt_mesh(resolution=0.05)`` -> ``GTMesh`` (vertices, faces, per-vertex class, instance,
  color of the visible surface), see ``ground_truth``;
- ``sdf(points)`` -> signed distance, class and instance of the nearest surface.

Scenes come from ``layout.generate_scene(seed, config, taxonomy)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ssr_ros.data.synthetic.primitives import BoxSet, union_sdf
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.taxonomy import ClassTaxonomy


@dataclass
class SceneObject:
    """One object instance: its id, class, template name and the indices of its boxes."""

    instance_id: int
    class_id: int
    name: str
    box_indices: list[int]


@dataclass
class Scene:
    """A generated room. See the module docstring for the frame conventions.

    room_size: (W, D, H) interior size, metres.
    boxes: every box of the scene (shell first: floor, ceiling, 4 walls).
    objects: one entry per instance, ``objects[i].instance_id == i + 1``.
    shell: box indices of the room faces, keys ``x_min, x_max, y_min, y_max, floor, ceiling``.
    light_position: (3,) world position of the room light.
    """

    room_size: tuple[float, float, float]
    wall_thickness: float
    boxes: BoxSet
    objects: list[SceneObject]
    taxonomy: ClassTaxonomy
    shell: dict[str, int]
    light_position: np.ndarray
    seed: int = 0
    room_type: str = ""
    rooms: list = field(default_factory=list)
    """The rooms of a multi-room floor (:class:`~ssr_ros.data.synthetic.floor.FloorRoom`); empty for one room."""
    _torch_cache: dict = field(default_factory=dict, repr=False, compare=False)

    # --- geometry ---------------------------------------------------------------------

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World AABB ``(lo, hi)`` of the whole scene including wall slabs, metres."""
        lo, hi = self.boxes.aabbs()
        return lo.min(axis=0), hi.max(axis=0)

    def interior_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The room interior ``([0, 0, 0], [W, D, H])``."""
        return np.zeros(3), np.asarray(self.room_size, dtype=np.float64)

    def torch_boxes(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Box geometry as float32 tensors on ``device`` (cached)."""
        key = str(device)
        if key not in self._torch_cache:
            self._torch_cache[key] = self.boxes.to_torch(device)
        return self._torch_cache[key]

    def sdf(self, points: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed distance to the scene surface at world points (P, 3), metres.

        Returns ``(sdf, class_ids, instance_ids)``, each (P,): distance (negative inside
        solids, exact outside), and the class and instance of the nearest box.
        """
        t = self.torch_boxes(device)
        pts = torch.as_tensor(np.asarray(points, dtype=np.float32), device=device).reshape(-1, 3)
        sdf, nearest = union_sdf(pts, t["centers"], t["half_extents"], t["rotations"])
        nearest = nearest.cpu().numpy()
        return sdf.cpu().numpy(), self.boxes.class_ids[nearest], self.boxes.instance_ids[nearest]

    # --- views and ground truth ----------------------------------------------------------

    def render(self, T_world_cam: np.ndarray, intrinsics: CameraIntrinsics, device: torch.device | str = "cpu"):
        """Render one noise-free view; see ``renderer.render_view``."""
        from ssr_ros.data.synthetic.renderer import render_view

        return render_view(self, T_world_cam, intrinsics, device=device)

    def gt_volume(self, voxel_size: float, bounds: tuple | None = None, device: torch.device | str = "cpu"):
        """Dense ground truth on the voxel grid of size ``voxel_size``; see ``ground_truth.gt_volume``."""
        from ssr_ros.data.synthetic.ground_truth import gt_volume

        return gt_volume(self, voxel_size, bounds=bounds, device=device)

    def gt_mesh(self, resolution: float = 0.05):
        """Mesh of the visible surface with per-vertex class; see ``ground_truth.gt_mesh``."""
        from ssr_ros.data.synthetic.ground_truth import gt_mesh

        return gt_mesh(self, resolution=resolution)

    # --- description --------------------------------------------------------------------

    def summary(self) -> dict:
        """JSON-ready description: seed, room type and size, objects with classes and boxes."""
        lo, hi = self.boxes.aabbs()
        objects = []
        for obj in self.objects:
            idx = obj.box_indices
            objects.append({
                "instance_id": obj.instance_id,
                "class_id": obj.class_id,
                "class_name": self.taxonomy.names[obj.class_id],
                "template": obj.name,
                "boxes": len(idx),
                "aabb_min": np.round(lo[idx].min(axis=0), 4).tolist(),
                "aabb_max": np.round(hi[idx].max(axis=0), 4).tolist(),
            })
        return {
            "seed": self.seed,
            "room_type": self.room_type,
            "room_size": [round(float(v), 4) for v in self.room_size],
            "wall_thickness": self.wall_thickness,
            "taxonomy": self.taxonomy.name,
            "num_boxes": len(self.boxes),
            "objects": objects,
        }
