"""Score a map against a synthetic scene's exact ground truth (volumes and mesh)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ssr_ros.evaluation.report import evaluate_reconstruction
from ssr_ros.map.voxel_export import dense_volume


def evaluate_map(tsdf_map, gt_volume, gt_mesh=None, class_names: list[str] | None = None,
                 fps: float | None = None, num_points: int = 200_000) -> dict:
    """Completion (all / observed / unobserved), semantics and mesh scores of ``tsdf_map``.

    gt_volume: a ``GTVolume`` (or its dict) on the map's voxel grid; gt_mesh: a ``GTMesh`` or
    ``(vertices, faces)``. The map is read on the ground truth's box; its own observed mask
    splits observed from unobserved space.
    """
    gt = dataclasses.asdict(gt_volume) if dataclasses.is_dataclass(gt_volume) else dict(gt_volume)
    predicted = dense_volume(tsdf_map, gt["origin_voxel"], np.asarray(gt["occupied"]).shape)
    predicted.pop("predicted")
    mesh = tsdf_map.mesh()
    gt_mesh_arrays = None
    if gt_mesh is not None:
        gt_mesh_arrays = (gt_mesh.vertices, gt_mesh.faces) if hasattr(gt_mesh, "faces") else tuple(gt_mesh)
    return evaluate_reconstruction(
        gt, predicted, tsdf_map.num_classes, class_names,
        gt_mesh=gt_mesh_arrays, pred_mesh=(mesh.vertices, mesh.triangles) if mesh.num_triangles else None,
        fps=fps, num_points=num_points,
    )
