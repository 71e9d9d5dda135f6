"""``ssr render``: PNG views of a saved map or mesh, with a title and a legend on each.

Both are drawn from a triangle mesh (a map's own, extracted once) by
:class:`ssr_ros.render.MeshRenderer`: Open3D's CPU ray caster, or a NumPy point splat where
Open3D is missing; ``--renderer tsdf`` ray casts a map's TSDF instead (slower on a CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ssr_ros.errors import DatasetError, InvalidInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render PNG views of a saved map or mesh",
        description="Render a saved map (map.ssrmap or the directory holding it) or a PLY mesh (vertex colors) to "
        "PNG, from a given camera pose or from N views around the scene. No display or GPU needed: the mesh (a "
        "map's own) is ray cast by Open3D on the CPU (a NumPy point splat where Open3D is not installed). Each "
        "image has a title and a legend (classes in sight, observed / predicted).",
    )
    parser.add_argument("input", help="map.ssrmap, a directory holding one, or a mesh .ply")
    parser.add_argument("--out", required=True, help="PNG path; with --orbit N > 1, views are written as <stem>_K.png")
    views = parser.add_mutually_exclusive_group()
    views.add_argument("--pose", help="camera-to-world pose (OpenCV optical frame): a text file holding a 4x4 or 3x4 "
                       "matrix, or 12/16 comma-separated numbers, row-major")
    views.add_argument("--orbit", type=int, help="N views evenly around the scene, looking down at its centre")
    parser.add_argument("--color-by", default="rgb", choices=["rgb", "label", "provenance"],
                        help="maps: fused color, class colors, or observed (grey) / predicted (orange) (default: rgb)")
    parser.add_argument("--width", type=int, default=640, help="image width (default: 640)")
    parser.add_argument("--height", type=int, default=480, help="image height (default: 480)")
    parser.add_argument("--fov", type=float, default=70.0, help="horizontal field of view, degrees (default: 70)")
    parser.add_argument("--elevation", type=float, default=40.0, help="orbit elevation, degrees (default: 40)")
    parser.add_argument("--device", default="cpu", help="map device (default: cpu)")
    parser.add_argument("--renderer", default="mesh", choices=["mesh", "tsdf"],
                        help="maps: 'mesh' (ray cast the map's mesh; fast) or 'tsdf' (ray cast the TSDF) (default: mesh)")
    parser.add_argument("--no-legend", action="store_true", help="the bare rendered image, without title and legend")
    parser.add_argument("--taxonomy", help="class taxonomy yaml of the map (default: the packaged ScanNet-20); "
                        "a map with another class count is refused, as the node's load_map does")
    parser.set_defaults(func=run)


def output_paths(out: Path, count: int) -> list[Path]:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{k:03d}{out.suffix or '.png'}") for k in range(count)]


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from ssr_ros.errors import MapFileError
    from ssr_ros.map.map_file import MAP_FILE
    from ssr_ros.map.semantic_tsdf import read_map
    from ssr_ros.preview import annotated_view, render_mesh_view, render_view
    from ssr_ros.render import MeshRenderer, mesh_bounds, orbit_poses, parse_pose, read_colored_mesh, view_intrinsics

    if args.width < 8 or args.height < 8 or not 1.0 <= args.fov <= 170.0:
        raise InvalidInput(f"image {args.width}x{args.height} / fov {args.fov} out of range (>= 8 px, 1-170 degrees)")
    if args.orbit is not None and args.orbit < 1:
        raise InvalidInput(f"--orbit {args.orbit} must be at least 1")
    source = Path(args.input)
    if source.is_dir():
        source = source / MAP_FILE
    if not source.exists():
        raise DatasetError(f"'{args.input}' does not exist (expected map.ssrmap, a directory holding it, or a .ply mesh)")
    intrinsics = view_intrinsics(args.width, args.height, args.fov)
    is_map = source.suffix == Path(MAP_FILE).suffix
    kind = {"rgb": "color", "label": "semantic", "provenance": "provenance"}[args.color_by]
    if is_map:
        from ssr_ros.preview import map_bounds, overview_poses
        from ssr_ros.taxonomy import ClassTaxonomy

        taxonomy = ClassTaxonomy.load(args.taxonomy)
        tsdf = read_map(source, args.device, taxonomy, backend="torch")  # only read: no integration kernel needed
        if tsdf.num_blocks == 0:
            raise MapFileError(f"map '{source}' is empty; nothing to render")
        lo, hi = map_bounds(tsdf)
        default_poses = overview_poses(tsdf, 1)
        mesh = tsdf.mesh() if args.renderer == "mesh" else None
        renderer = MeshRenderer(mesh.vertices, mesh.triangles) if mesh is not None else None
    else:
        vertices, faces, colors = read_colored_mesh(source)
        lo, hi = mesh_bounds(vertices)
        default_poses = orbit_poses(lo, hi, 1, args.fov, args.elevation)
        renderer = MeshRenderer(vertices, faces)
        semantic = _semantic_vertex_labels(source, colors, args.taxonomy)
    if args.pose:
        poses = [parse_pose(args.pose)]
    elif args.orbit:
        poses = orbit_poses(lo, hi, args.orbit, args.fov, args.elevation)
    else:
        poses = default_poses
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MapFileError(f"cannot create '{out.parent}': {error.strerror or error}") from error
    written = []
    start = time.perf_counter()
    for k, (path, T) in enumerate(zip(output_paths(out, len(poses)), poses)):
        note = f"{source.name}, view {k + 1} of {len(poses)}"
        if is_map:
            view = (render_mesh_view(mesh, taxonomy, intrinsics, T, renderer) if renderer is not None
                    else render_view(tsdf, taxonomy, intrinsics, T))
            image = view[kind] if args.no_legend else annotated_view(view, kind, taxonomy, note)
        else:
            image = _render_ply(renderer, colors, semantic, intrinsics, T, note, args.no_legend)
        try:
            Image.fromarray(np.ascontiguousarray(image)).save(path)
        except (OSError, ValueError) as error:
            raise MapFileError(f"cannot write '{path}': {error}") from error
        written.append(path)
    seconds = time.perf_counter() - start
    print(f"[render] wrote {len(written)} view(s) in {seconds:.1f} s ({renderer.method if renderer else 'tsdf'} "
          f"renderer): {', '.join(str(p) for p in written)}")
    return 0


def _semantic_vertex_labels(path: Path, colors, taxonomy_path):
    """(labels (V,), taxonomy) when the PLY's vertex colors are the class colors of its ``label``
    property (mesh_semantic.ply), so a class legend is true; else None."""
    import numpy as np
    from plyfile import PlyData

    from ssr_ros.taxonomy import ClassTaxonomy

    if colors is None or path.suffix.lower() != ".ply":
        return None
    vertex = PlyData.read(str(path))["vertex"]
    if "label" not in {p.name for p in vertex.properties}:
        return None
    taxonomy = ClassTaxonomy.load(taxonomy_path)
    labels = np.asarray(vertex["label"], dtype=np.int64)
    if labels.size == 0 or labels.max() >= taxonomy.num_classes:
        return None
    if np.mean(np.all(taxonomy.colorize(labels) == colors, axis=1)) < 0.95:
        return None
    return labels, taxonomy


def _render_ply(renderer, colors, semantic, intrinsics, T, note: str, bare: bool):
    import numpy as np

    from ssr_ros.figure import annotate, class_legend

    layers = {"image": (colors, True, True)}
    if semantic is not None:
        labels = semantic[0]
        layers["ids"] = (np.stack([labels % 256, labels // 256, np.ones_like(labels)], axis=1).astype(np.uint8), False, False)
    images = renderer.render_layers(layers, intrinsics, T)
    if bare:
        return images["image"]
    if semantic is None:
        title = "vertex colors" if colors is not None else "mesh (no vertex colors)"
        return annotate(images["image"], title, [], note)
    ids = images["ids"].astype(np.int64)
    visible = np.where(ids[..., 2] == 1, ids[..., 0] + 256 * ids[..., 1], -1)
    return annotate(images["image"], "semantic classes", class_legend(visible, semantic[1]), note)
