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


def completion_effect(tsdf_map, gt_mesh, threshold: float = 0.05, num_points: int = 200_000) -> dict:
    """Mesh scores of the map with its predicted voxels and without them (fusion only).

    gt_mesh: a ``GTMesh`` or ``(vertices, faces)``. Returns ``{"fusion_only": scores,
    "with_completion": scores or None (the map holds no predicted voxel), "fscore_change":
    with - without or None}``, scores as ``MeshScores.as_dict()`` plus ``triangles``; the same
    sampling as :func:`evaluate_map`, so ``with_completion`` equals its ``mesh`` entry.
    """
    from ssr_ros.evaluation.mesh import mesh_scores_from_meshes

    gt_vertices, gt_faces = (gt_mesh.vertices, gt_mesh.faces) if hasattr(gt_mesh, "faces") else tuple(gt_mesh)

    def scores(mesh) -> dict | None:
        if mesh.num_triangles == 0:
            return None
        out = mesh_scores_from_meshes(mesh.vertices, mesh.triangles, gt_vertices, gt_faces, threshold=threshold,
                                      num_points=num_points).as_dict()
        out["triangles"] = mesh.num_triangles
        return out

    completed = tsdf_map.mesh()
    has_predictions = bool(completed.predicted.any())
    result = {"with_completion": scores(completed) if has_predictions else None,
              "fusion_only": scores(tsdf_map.mesh(include_predicted=False))}
    both = result["with_completion"] and result["fusion_only"]
    result["fscore_change"] = result["with_completion"]["fscore"] - result["fusion_only"]["fscore"] if both else None
    return result


def format_completion_effect(effect: dict) -> str:
    """One line per map: F-score, precision and recall at the threshold, in percent."""
    def line(name: str, scores: dict | None) -> str:
        if scores is None:
            return f"  {name:<16} -"
        return (f"  {name:<16} F-score {100 * scores['fscore']:5.1f}  precision {100 * scores['precision']:5.1f}  "
                f"recall {100 * scores['recall']:5.1f}  ({scores['triangles']:,} triangles)")

    threshold = next((s["threshold"] for s in (effect["fusion_only"], effect["with_completion"]) if s), 0.05)
    lines = [f"mesh against the ground truth at {100 * threshold:.0f} cm (%)",
             line("fusion only", effect["fusion_only"]), line("with completion", effect["with_completion"])]
    if effect["fscore_change"] is not None:
        change = 100 * effect["fscore_change"]
        lines.append(f"  completion {'raises' if change > 0 else 'lowers'} the F-score by {abs(change):.1f} points")
    return "\n".join(lines)
