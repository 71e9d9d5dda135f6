"""PLY export of meshes and voxels (binary little-endian; opens in Open3D and MeshLab).

Mesh vertices carry ``x y z`` (float32, metres, map frame), ``red green blue`` (uchar),
``label`` (ushort class id), ``confidence`` (float32) and ``observed`` / ``predicted``
(uchar 0/1); faces carry ``vertex_indices`` (int32 triangles). Voxel clouds carry the voxel
centre, color, label, confidence, ``tsdf`` (metres), ``weight`` and the two flags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from ssr_ros.atomic_file import atomic_write
from ssr_ros.errors import InvalidInput
from ssr_ros.geometry import transform_points
from ssr_ros.map.meshing import BlockMesh
from ssr_ros.map.semantic_evidence import evidence_label
from ssr_ros.map.voxel_export import voxel_centres
from ssr_ros.map.voxel_layer import as_layer


def _display_colors(rgb: np.ndarray, labels: np.ndarray, taxonomy, color_by: str) -> np.ndarray:
    if color_by == "rgb":
        return rgb
    if color_by == "label":
        if taxonomy is None:
            from ssr_ros.taxonomy import ClassTaxonomy

            taxonomy = ClassTaxonomy.load()
        return taxonomy.colorize(labels)
    raise InvalidInput(f"color_by={color_by!r} is not supported; expected 'rgb' or 'label'")


def _write_atomic(path: Path, ply: PlyData) -> None:
    with atomic_write(path, "PLY") as handle:
        ply.write(handle)


def _vertex_element(points, colors, labels, confidence, observed, predicted, extra=()) -> PlyElement:
    n = points.shape[0]
    fields = [
        ("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
        ("label", "u2"), ("confidence", "f4"), ("observed", "u1"), ("predicted", "u1"),
    ] + [(name, "f4") for name, _ in extra]
    vertex = np.empty(n, dtype=fields)
    vertex["x"], vertex["y"], vertex["z"] = points[:, 0], points[:, 1], points[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    vertex["label"] = labels
    vertex["confidence"] = confidence
    vertex["observed"] = observed
    vertex["predicted"] = predicted
    for name, values in extra:
        vertex[name] = values
    return PlyElement.describe(vertex, "vertex")


def export_mesh_ply(path: str | Path, mesh: BlockMesh, taxonomy=None, color_by: str = "rgb") -> None:
    """Write a mesh (e.g. ``tsdf.mesh()``) as PLY; ``color_by='label'`` paints class colors."""
    colors = _display_colors(mesh.colors, mesh.labels, taxonomy, color_by)
    vertex = _vertex_element(
        mesh.vertices, colors, mesh.labels, mesh.confidence, mesh.observed, mesh.predicted
    )
    faces = np.empty(mesh.num_triangles, dtype=[("vertex_indices", "i4", (3,))])
    faces["vertex_indices"] = mesh.triangles.astype(np.int32)
    _write_atomic(Path(path), PlyData([vertex, PlyElement.describe(faces, "face")], text=False))


def export_voxels_ply(
    path: str | Path, tsdf_map, which: str = "surface", taxonomy=None, color_by: str = "rgb",
    transform: np.ndarray | None = None,
) -> int:
    """Write voxel centres as a PLY point cloud; returns the number of points.

    transform: optional (4, 4) applied to the centres (map frame -> the frame to write in).

    which: 'surface' (known voxels within one voxel of the surface, |tsdf| < voxel_size),
    'observed' (observed voxels), 'known' (observed or predicted or with any weight).
    """
    if which not in ("surface", "observed", "known"):
        raise InvalidInput(f"which={which!r} is not supported; expected 'surface', 'observed' or 'known'")
    layer = as_layer(tsdf_map)
    weight = layer.used("weight").to(torch.float32).reshape(-1)
    tsdf = layer.used("tsdf").to(torch.float32).reshape(-1) * layer.truncation
    known = weight != 0
    if which == "surface":
        select = known & (tsdf.abs() < layer.voxel_size)
    elif which == "observed":
        select = layer.observed(weight)
    else:
        select = known
    idx = torch.nonzero(select).squeeze(1)
    points = voxel_centres(layer, idx).cpu().numpy()
    if transform is not None:
        points = transform_points(transform, points)
    labels, confidence = evidence_label(
        layer.used("sem_label").reshape(-1, 2)[idx], layer.used("sem_count").reshape(-1, 3)[idx]
    )
    labels_np = labels.cpu().numpy()
    rgb = layer.used("color").reshape(-1, 3)[idx].cpu().numpy()
    w = weight[idx]
    vertex = _vertex_element(
        points, _display_colors(rgb, labels_np, taxonomy, color_by), labels_np,
        confidence.cpu().numpy(), layer.observed(w).cpu().numpy(), (w < 0).cpu().numpy(),
        extra=(("tsdf", tsdf[idx].cpu().numpy()), ("weight", w.clamp(min=0).cpu().numpy())),
    )
    _write_atomic(Path(path), PlyData([vertex], text=False))
    return int(idx.numel())
