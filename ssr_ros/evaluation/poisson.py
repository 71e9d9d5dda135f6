"""Screened Poisson reconstruction of a fused mesh: the classical way to close its holes.

The baseline a user could pick instead of the completion network: take the fusion-only mesh,
give its vertices the area-weighted normals of their triangles (pointing into free space),
run Open3D's screened Poisson reconstruction, drop the vertices whose Poisson density is in the
lowest ``density_quantile`` (the surface Poisson invents far from any input point) and crop
the result to the input points' bounding box.

:func:`mesh_occupancy` turns such a mesh into occupied voxels on the map's grid, so the
baseline can be scored on the same voxels as the map (see its docstring for the rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.config import param, validate_config
from ssr_ros.errors import InvalidInput


@dataclass
class PoissonConfig:
    """How the fused mesh is turned into a Poisson surface."""

    depth: int = param(8, "octree depth of the Poisson solve (2^depth cells across the input's box)", low=4, high=12)
    density_quantile: float = param(
        0.05, "vertices whose Poisson density is below this quantile are removed (0 keeps all)", low=0.0, high=0.99
    )
    crop_to_input: bool = param(True, "crop the result to the input points' axis-aligned bounding box")

    def validate(self) -> "PoissonConfig":
        return validate_config(self)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) float64 unit normals: the area-weighted sum of the adjacent triangles' normals.

    vertices: (N, 3) metres; triangles: (M, 3) int indices, counter-clockwise seen from the side
    the normals should point to. Vertices without a triangle get a zero normal.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)  # length = 2 x area: area weighting for free
    normals = np.zeros_like(vertices)
    for i in range(3):
        np.add.at(normals, triangles[:, i], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def poisson_surface(vertices: np.ndarray, triangles: np.ndarray, config: PoissonConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Poisson surface of a triangle mesh: ``(vertices (V, 3) float64, triangles (T, 3) int64)``.

    Input as :func:`vertex_normals`. An input without triangles gives an empty mesh. The output
    triangles are oriented like the input (counter-clockwise seen from free space).
    """
    import open3d as o3d

    config = (config or PoissonConfig()).validate()
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if len(triangles) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    normals = vertex_normals(vertices, triangles)
    keep = np.linalg.norm(normals, axis=1) > 0
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(vertices[keep]))
    cloud.normals = o3d.utility.Vector3dVector(normals[keep])
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(cloud, depth=config.depth)
    densities = np.asarray(densities)
    if config.density_quantile > 0 and len(densities):
        mesh.remove_vertices_by_mask(densities < np.quantile(densities, config.density_quantile))
    if config.crop_to_input:
        mesh = mesh.crop(cloud.get_axis_aligned_bounding_box())
    out_vertices = np.asarray(mesh.vertices, dtype=np.float64)
    out_triangles = np.asarray(mesh.triangles, dtype=np.int64)
    if len(out_triangles) and _points_against(out_vertices, out_triangles, vertices[keep], normals[keep]):
        out_triangles = out_triangles[:, ::-1].copy()
    return out_vertices, out_triangles


def _points_against(vertices: np.ndarray, triangles: np.ndarray, points: np.ndarray, normals: np.ndarray) -> bool:
    """Whether the mesh's normals mostly oppose those of the nearest input points."""
    from scipy.spatial import cKDTree

    _, nearest = cKDTree(points).query(vertices, workers=-1)
    agreement = np.einsum("ij,ij->i", vertex_normals(vertices, triangles), normals[nearest])
    return float(np.sum(agreement)) < 0


def mesh_occupancy(vertices: np.ndarray, triangles: np.ndarray, origin_voxel, shape, voxel_size: float) -> np.ndarray:
    """(X, Y, Z) bool: voxels a mesh makes occupied, by the ground truth's rule ``sdf < voxel / 2``.

    The signed distance of a voxel centre is its distance to the nearest point of the mesh,
    negative when the centre lies behind that point's triangle (against its normal, i.e. inside
    the solid). So voxels the surface passes through and the voxels behind it count as
    occupied; for an open mesh the sign near its borders is only as good as the nearest
    triangle's side. Voxel ``[i, j, k]`` is the map's global voxel ``origin_voxel + (i, j, k)``
    (centre ``(v + 0.5) * voxel_size``). An empty mesh occupies nothing.
    """
    import open3d as o3d

    if not (voxel_size > 0 and np.isfinite(voxel_size)):
        raise InvalidInput(f"voxel_size must be positive and finite, got {voxel_size}")
    shape = tuple(int(n) for n in shape)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if len(triangles) == 0:
        return np.zeros(shape, dtype=bool)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(vertices, dtype=np.float32)), o3d.core.Tensor(triangles.astype(np.uint32)))
    axes = [np.arange(n, dtype=np.float64) for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    centers = ((grid + np.asarray(origin_voxel, dtype=np.float64) + 0.5) * voxel_size).astype(np.float32)
    closest = scene.compute_closest_points(o3d.core.Tensor(centers))
    offset = centers - closest["points"].numpy()
    distance = np.linalg.norm(offset, axis=1)
    side = np.einsum("ij,ij->i", offset, closest["primitive_normals"].numpy())
    signed = np.where(side < 0, -distance, distance)
    return (signed < voxel_size / 2).reshape(shape)
