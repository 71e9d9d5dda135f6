"""``ssr render``: PNG views of a saved map (ray cast) or mesh (software point splat)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssr_ros.errors import DatasetError, InvalidInput


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render PNG views of a saved map or mesh",
        description="Render a saved map (map.ssrmap or the directory holding it; ray cast through the TSDF) or a "
        "PLY mesh (vertex colors; a NumPy point-splat renderer that needs no display or GPU) to PNG, from a "
        "given camera pose or from N views around the scene.",
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
    from ssr_ros.map.map_file import MAP_FILE, read_map
    from ssr_ros.render import mesh_bounds, orbit_poses, parse_pose, read_colored_mesh, render_mesh, view_intrinsics

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
    if is_map:
        from ssr_ros.preview import map_bounds, overview_poses, render_view
        from ssr_ros.taxonomy import ClassTaxonomy

        taxonomy = ClassTaxonomy.load(args.taxonomy)
        tsdf = read_map(source, args.device, taxonomy)
        if tsdf.num_blocks == 0:
            raise MapFileError(f"map '{source}' is empty; nothing to render")
        lo, hi = map_bounds(tsdf)
        default_poses = overview_poses(tsdf, 1)
    else:
        vertices, faces, colors = read_colored_mesh(source)
        lo, hi = mesh_bounds(vertices)
        default_poses = orbit_poses(lo, hi, 1, args.fov, args.elevation)
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
    for path, T in zip(output_paths(out, len(poses)), poses):
        if is_map:
            view = render_view(tsdf, taxonomy, intrinsics, T)
            image = view[{"rgb": "color", "label": "semantic", "provenance": "provenance"}[args.color_by]]
        else:
            image = render_mesh(vertices, faces, colors, intrinsics, T)
        try:
            Image.fromarray(np.ascontiguousarray(image)).save(path)
        except (OSError, ValueError) as error:
            raise MapFileError(f"cannot write '{path}': {error}") from error
        written.append(path)
    print(f"[render] wrote {len(written)} view(s): {', '.join(str(p) for p in written)}")
    return 0
