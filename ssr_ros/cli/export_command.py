"""``ssr export``: write a saved map's outputs again, e.g. the Nav2 map and distance fields."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from ssr_ros.pipeline import SAVE_FORMATS

    parser = subparsers.add_parser(
        "export",
        help="export a saved map: Nav2 map_server files, distance fields, meshes, voxels",
        description="Load a saved map (map.ssrmap or the directory holding it) and write the chosen outputs, as the "
        "node's save_map service does. 'nav2' writes occupancy.{pgm,yaml} (measured obstacles of the height band "
        "above the floor; trinary) and occupancy_predicted.{pgm,yaml} (with predicted obstacles as their "
        "confidence in percent; raw), loadable by nav2_map_server; 'esdf' writes esdf.npz (2D and 3D signed "
        "distance fields, measured only and with predictions). Everything is in the map file's frame (z up).",
        epilog="example:\n  ssr export out/kitchen --out out/kitchen_nav2 --formats nav2 --max-height 1.2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="map.ssrmap or a directory holding one")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--formats", default="nav2,esdf",
                        help=f"comma-separated, any of {', '.join(SAVE_FORMATS)} (default: nav2,esdf)")
    parser.add_argument("--config", help="parameter yaml (the node's config/mapping.yaml); its planning.* apply")
    parser.add_argument("--min-height", type=float, help="planning.min_height: lowest obstacle height above the floor, m")
    parser.add_argument("--max-height", type=float, help="planning.max_height: highest obstacle height above the floor, m")
    parser.add_argument("--floor-height", type=float, help="planning.floor fixed at this z, m (default: estimated)")
    parser.add_argument("--include-predicted", action="store_true",
                        help="planning.include_predicted: confident predictions mark the main grid too")
    parser.add_argument("--taxonomy", help="class taxonomy yaml of the map (default: the packaged ScanNet-20)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.config import config_from_dict, read_parameter_file
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    values = read_parameter_file(args.config) if args.config else {}
    planning = dict(values.get("planning", {}))
    for flag, key in (("min_height", "min_height"), ("max_height", "max_height")):
        if getattr(args, flag) is not None:
            planning[key] = getattr(args, flag)
    if args.floor_height is not None:
        planning.update(floor="fixed", floor_height=args.floor_height)
    if args.include_predicted:
        planning["include_predicted"] = True
    config = config_from_dict(PipelineConfig, {"planning": planning, "completion": {"type": "none"},
                                               "device": "cpu", **({"taxonomy": args.taxonomy} if args.taxonomy else {})})
    pipeline = MappingPipeline(config)
    pipeline.load(args.input)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    files = pipeline.save(Path(args.out), formats)
    outputs = pipeline.planning_outputs(with_3d=False)
    floor = outputs.floor
    print(f"[export] floor at z = {floor.height:.3f} m ({floor.source}); obstacles between "
          f"{outputs.band[0]:.2f} and {outputs.band[1]:.2f} m; {outputs.summary()['occupancy']}")
    print(f"[export] wrote {', '.join(str(f) for f in files)}")
    return 0
