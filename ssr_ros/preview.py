"""PNG previews of a map: rendered views in fused color, in class colors, and by provenance.

Views are ray cast through the map's mesh (:class:`ssr_ros.render.MeshRenderer`: Open3D's
CPU ray caster, a NumPy point splat without Open3D) or through the TSDF itself
(:meth:`SemanticTSDF.raycast`, slower on a CPU), shaded by the surface normal so shape reads at
a glance. Every image carries a title and a legend (:mod:`ssr_ros.figure`). The provenance view shows *observed* surface in grey and
*predicted* surface (written by the completion network) in orange. A contact sheet puts the
views side by side with a legend of the classes in sight.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ssr_ros.errors import InvalidInput
from ssr_ros.figure import class_colors
from ssr_ros.geometry import CameraIntrinsics, look_at
from ssr_ros.taxonomy import ClassTaxonomy

OBSERVED_RGB = np.array([170, 170, 170], dtype=np.float32)
PREDICTED_RGB = np.array([255, 140, 0], dtype=np.float32)
BACKGROUND_RGB = np.array([30, 30, 30], dtype=np.uint8)
LIGHT = np.array([0.3, -0.4, 0.85])


def map_bounds(tsdf_map) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum corner (metres) of the allocated blocks."""
    coords = tsdf_map.allocated_block_coords().cpu().numpy()
    if coords.size == 0:
        return np.zeros(3), np.zeros(3)
    extent = tsdf_map.voxel_size * tsdf_map.block_size
    return coords.min(axis=0) * extent, (coords.max(axis=0) + 1) * extent


def _up_frame(up) -> tuple[np.ndarray, np.ndarray]:
    """(unit up, R): R's columns are world coordinates of a frame whose third axis is ``up``."""
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=float) / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(up, helper)
    a /= np.linalg.norm(a)
    return up, np.stack([a, np.cross(up, a), up], axis=1)


CEILING_ROOM_M = 2.2
"""Maps taller than this (along up) probably have a ceiling: the top CEILING_CUT_M is cut away in
the previews so that one looks into the rooms from above (a dollhouse view)."""
CEILING_CUT_M = 0.4


def overview_poses(tsdf_map, count: int = 3, up=None, cameras=None, fov_deg: float = 70.0,
                   aspect: float = 4 / 3, points=None) -> list[np.ndarray]:
    """A bird's-eye view of the whole map, then outside-in views from above the map's edge.

    The first camera looks straight down on the map and sees all of it; the others stand
    outside the map's bounds at 50 degrees elevation, looking at its centre from the side the
    sensor moved on: from the directions of the camera positions ``cameras`` ((N, 3), map
    frame, in order) at evenly spaced points along the trajectory (without them: round the
    corners). ``up`` is the world's up direction (default z; recordings whose world frame is a
    camera's pass the cameras' mean up). The views frame ``points`` ((P, 3), e.g. the mesh's
    vertices: tighter than the allocated blocks) where given. Use :func:`cut_height` to cut a
    ceiling away.
    """
    up, R = _up_frame(up)
    coords = tsdf_map.allocated_block_coords().cpu().numpy()
    if coords.size == 0:
        return [look_at(np.array([0.0, -2.0, 2.0]) @ R.T, np.zeros(3), up=up)][:count]
    extent_block = tsdf_map.voxel_size * tsdf_map.block_size
    if points is not None and len(points) >= 8:
        local = np.asarray(points, dtype=np.float64) @ R
    else:
        local = np.concatenate([coords, coords + 1]) * extent_block @ R
    # the 1st..99th percentile box: a few stray surface patches far out do not shrink the map
    lo, hi = np.percentile(local, 1.0, axis=0), np.percentile(local, 99.0, axis=0)
    centre, extent = (lo + hi) / 2, np.maximum(hi - lo, 0.1)
    half_h = np.radians(fov_deg) / 2
    half_v = np.arctan(np.tan(half_h) / aspect)
    top = min(hi[2], cut_height_local(lo[2], hi[2]))
    # bird's-eye: high enough that the whole footprint fits the image (image "up" = the frame's +y)
    height = 1.05 * max(0.5 * extent[0] / np.tan(half_h), 0.5 * extent[1] / np.tan(half_v))
    eye = R @ np.array([centre[0], centre[1], top + height])
    target = R @ np.array([centre[0], centre[1], lo[2]])
    poses = [look_at(eye, target, up=R[:, 1])]
    # outside-in: far enough that the bounding sphere of the (cut) map fits the image height
    middle = R @ np.array([centre[0], centre[1], lo[2] + 0.35 * (top - lo[2])])
    radius = 0.5 * np.linalg.norm([extent[0], extent[1], top - lo[2]])
    distance = 1.0 * radius / np.tan(half_v)
    elevation = np.radians(50.0)
    directions = _view_directions(count - 1, local_cameras=None if cameras is None or len(cameras) == 0
                                  else np.asarray(cameras, dtype=float) @ R, centre=centre)
    for direction in directions:
        offset = np.cos(elevation) * direction[0], np.cos(elevation) * direction[1], np.sin(elevation)
        poses.append(look_at(middle + distance * (R @ np.array(offset)), middle, up=up))
    return poses[:count]


def _view_directions(count: int, local_cameras, centre) -> list[np.ndarray]:
    """Unit horizontal directions (local frame) from the map centre towards the camera positions at
    evenly spaced points along the trajectory, or the map's diagonals without cameras."""
    diagonals = [np.array(d) / np.sqrt(2.0) for d in ((-1, -1), (1, 1), (1, -1), (-1, 1))]
    out = []
    for k in range(count):
        direction = diagonals[k % len(diagonals)]
        if local_cameras is not None:
            position = local_cameras[int(round((k + 0.5) / count * (len(local_cameras) - 1)))]
            horizontal = position[:2] - centre[:2]
            if np.linalg.norm(horizontal) > 0.2:  # a camera near the centre gives no direction
                direction = horizontal / np.linalg.norm(horizontal)
        if any(direction @ other > np.cos(np.radians(60.0)) for other in out):
            # a short trajectory: turn a view that would repeat an earlier one by 90 degrees
            direction = np.array([-out[-1][1], out[-1][0]])
        out.append(direction)
    return out


def cut_height_local(lo_z: float, hi_z: float) -> float:
    """Height (along up) above which previews cut the map away: under a probable ceiling."""
    return hi_z - CEILING_CUT_M if hi_z - lo_z > CEILING_ROOM_M else hi_z


def cut_height(tsdf_map, up=None) -> float:
    """:func:`cut_height_local` of the map's bounds, as a coordinate along ``up``."""
    up, R = _up_frame(up)
    coords = tsdf_map.allocated_block_coords().cpu().numpy()
    if coords.size == 0:
        return np.inf
    heights = np.concatenate([coords, coords + 1]) * (tsdf_map.voxel_size * tsdf_map.block_size) @ up
    return cut_height_local(float(heights.min()), float(heights.max()))


def _shade(colors: np.ndarray, normals: np.ndarray, hit: np.ndarray) -> np.ndarray:
    lambert = np.abs(normals @ (LIGHT / np.linalg.norm(LIGHT)))
    shaded = colors.astype(np.float32) * (0.35 + 0.65 * lambert[..., None])
    out = np.where(hit[..., None], np.clip(shaded, 0, 255), BACKGROUND_RGB).astype(np.uint8)
    return out


def _farthest_corner(tsdf_map, T_world_cam: np.ndarray) -> float:
    """Distance from the camera to the farthest corner of the map's blocks (no ray need go further)."""
    lo, hi = map_bounds(tsdf_map)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    distance = float(np.linalg.norm(corners - np.asarray(T_world_cam, dtype=np.float64)[:3, 3], axis=1).max())
    return min(max(distance, 0.2), 50.0)


def render_view(tsdf_map, taxonomy: ClassTaxonomy, intrinsics: CameraIntrinsics, T_world_cam: np.ndarray) -> dict[str, np.ndarray]:
    """(H, W, 3) uint8 images 'color', 'semantic', 'provenance' and the (H, W) int64 'label'."""
    with torch.no_grad():
        images = tsdf_map.raycast(intrinsics, T_world_cam, max_depth=_farthest_corner(tsdf_map, T_world_cam))
    hit = images["hit"].cpu().numpy()
    normals = images["normal"].cpu().numpy()
    labels = images["label"].cpu().numpy()
    predicted = images["predicted"].cpu().numpy()
    provenance = np.where(predicted[..., None], PREDICTED_RGB, OBSERVED_RGB)
    return {
        "color": _shade(images["color"].cpu().numpy(), normals, hit),
        "semantic": _shade(class_colors(labels, taxonomy), normals, hit),
        "provenance": _shade(provenance, normals, hit),
        "label": np.where(hit, labels, -1),
    }


def render_mesh_view(mesh, taxonomy: ClassTaxonomy, intrinsics: CameraIntrinsics, T_world_cam: np.ndarray,
                     renderer=None) -> dict[str, np.ndarray]:
    """The images of :func:`render_view` drawn from the map's mesh (``BlockMesh``) by
    :class:`ssr_ros.render.MeshRenderer` (pass one to reuse it across views of the same mesh):
    much faster than ray casting the TSDF on a CPU."""
    from ssr_ros.render import MeshRenderer

    renderer = renderer or MeshRenderer(mesh.vertices, mesh.triangles)
    labels = np.asarray(mesh.labels, dtype=np.int64)
    predicted = np.asarray(mesh.predicted, dtype=bool)
    provenance = np.where(predicted[:, None], PREDICTED_RGB, OBSERVED_RGB).astype(np.uint8)
    ids = np.stack([labels % 256, labels // 256, np.ones_like(labels)], axis=1).astype(np.uint8)
    images = renderer.render_layers({
        "ids": (ids, False, False),
        "color": (np.asarray(mesh.colors, dtype=np.uint8), True, True),
        "semantic": (class_colors(labels, taxonomy), True, True),
        "provenance": (provenance, True, True),
    }, intrinsics, T_world_cam)
    id_image = images.pop("ids").astype(np.int64)
    hit = id_image[..., 2] == 1
    return {**images, "label": np.where(hit, id_image[..., 0] + 256 * id_image[..., 1], -1)}


def write_previews(
    tsdf_map, taxonomy: ClassTaxonomy, out_dir: str | Path, poses: list[np.ndarray] | None = None,
    width: int = 480, height: int = 360, fov_deg: float = 70.0, method: str = "raycast", up=None,
    semantic_source: str | None = None, cameras=None,
) -> list[Path]:
    """Render views and write ``preview_{color,semantic,provenance}_K.png`` and ``previews.png``.

    method: ``raycast`` (through the TSDF) or ``mesh`` (the map's mesh, ray cast by Open3D or
    point-splatted; fast on a CPU). Each view image carries a title and a legend.
    semantic_source (``MappingPipeline.semantic_source``): 'none' puts a panel saying "no
    semantic source" in place of the (empty) class image; 'structure' notes that the classes
    are structural labels. cameras: (N, 3) camera positions along the trajectory, for the
    outside-in views (:func:`overview_poses`). With ``method='mesh'`` a probable ceiling is cut
    away (:func:`cut_height`). Returns the written paths (the contact sheet last).
    """
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mesh = _below(tsdf_map.mesh(), cut_height(tsdf_map, up), up) if method == "mesh" else None
    poses = poses if poses is not None else overview_poses(
        tsdf_map, up=up, cameras=cameras, fov_deg=fov_deg, aspect=width / height,
        points=None if mesh is None else mesh.vertices[np.unique(mesh.triangles)])
    focal = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    intrinsics = CameraIntrinsics(focal, focal, (width - 1) / 2, (height - 1) / 2, width, height)
    if method == "raycast":
        views = [render_view(tsdf_map, taxonomy, intrinsics, T) for T in poses]
    elif method == "mesh":
        from ssr_ros.render import MeshRenderer

        renderer = MeshRenderer(mesh.vertices, mesh.triangles)
        views = [render_mesh_view(mesh, taxonomy, intrinsics, T, renderer) for T in poses]
    else:
        raise InvalidInput(f"preview method {method!r} not supported; expected 'raycast' or 'mesh'")
    if semantic_source == "none":
        for view in views:
            view["semantic"] = _message_panel(view["semantic"].shape, "no semantic source")
    written = []
    for k, view in enumerate(views):
        for kind in ("color", "semantic", "provenance"):
            path = out_dir / f"preview_{kind}_{k}.png"
            note = f"view {k + 1} of {len(views)}"
            if kind == "semantic" and semantic_source in SEMANTIC_NOTES:
                note = f"{SEMANTIC_NOTES[semantic_source]}; {note}"
            Image.fromarray(annotated_view(view, kind, taxonomy, note)).save(path)
            written.append(path)
    written.append(_contact_sheet(views, taxonomy, out_dir / "previews.png"))
    return written


def _below(mesh, height: float, up=None):
    """``mesh`` without the triangles that reach above ``height`` along ``up``."""
    import dataclasses

    if not np.isfinite(height) or len(mesh.triangles) == 0:
        return mesh
    up, _ = _up_frame(up)
    above = (np.asarray(mesh.vertices, dtype=np.float64) @ up) > height
    return dataclasses.replace(mesh, triangles=mesh.triangles[~above[mesh.triangles].any(axis=1)])


VIEW_TITLES = {"color": "fused color", "semantic": "semantic classes", "provenance": "observed / predicted"}
SEMANTIC_NOTES = {"none": "no semantic source", "structure": "structural labels (floor / wall), no model"}


def _message_panel(shape: tuple[int, ...], message: str) -> np.ndarray:
    """(H, W, 3) uint8 grey image with ``message`` written in its middle."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (shape[1], shape[0]), (60, 60, 60))
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((0, 0), message)
    draw.text(((shape[1] - box[2]) / 2, (shape[0] - box[3]) / 2), message, fill=(235, 235, 235))
    return np.asarray(image)


def view_legend(view: dict[str, np.ndarray], kind: str, taxonomy: ClassTaxonomy) -> list:
    """The legend of one rendered image: classes in sight, or observed / predicted."""
    from ssr_ros.figure import PROVENANCE_LEGEND, class_legend

    if kind == "semantic":
        return class_legend(view["label"], taxonomy)
    if kind == "provenance":
        return PROVENANCE_LEGEND
    return []


def annotated_view(view: dict[str, np.ndarray], kind: str, taxonomy: ClassTaxonomy, note: str = "") -> np.ndarray:
    """The ``kind`` image of a rendered view with its title and legend."""
    from ssr_ros.figure import annotate

    legend = view_legend(view, kind, taxonomy)
    if kind == "color":
        note = "; ".join(filter(None, ["colors as fused from the camera", note]))
    return annotate(view[kind], VIEW_TITLES[kind], legend, note)


def _contact_sheet(views: list[dict[str, np.ndarray]], taxonomy: ClassTaxonomy, path: Path) -> Path:
    """One image: a row per view (fused color | classes | observed / predicted), column titles,
    and one legend of the classes in sight and of observed / predicted."""
    from PIL import Image

    from ssr_ros.figure import PROVENANCE_LEGEND, annotate, class_legend

    gap = 4
    kinds = ("color", "semantic", "provenance")
    rows = []
    for r, view in enumerate(views):
        cells = [annotate(view[kind], VIEW_TITLES[kind]) if r == 0 else view[kind] for kind in kinds]
        height = max(c.shape[0] for c in cells)
        cells = [np.pad(c, ((height - c.shape[0], 0), (0, gap), (0, 0))) for c in cells]
        rows.append(np.concatenate(cells, axis=1)[:, :-gap])
    width = max(row.shape[1] for row in rows)
    sheet = np.concatenate([np.pad(row, ((0, gap), (0, width - row.shape[1]), (0, 0))) for row in rows], axis=0)[:-gap]
    labels = np.concatenate([view["label"].reshape(-1) for view in views])
    legend = class_legend(labels, taxonomy) + PROVENANCE_LEGEND
    Image.fromarray(annotate(sheet, "ssr_ros map previews", legend, f"{len(views)} views")).save(path)
    return path
