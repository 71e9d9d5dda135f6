"""``ssr refine-objects MAP --out MAP2``: find the objects of a saved map, complete and align them."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "refine-objects",
        help="find object instances in a saved map, complete them from a learned shape prior and align them",
        description="Label the map's object instances (connected components of same-class surface voxels), "
        "complete each instance of a class the shape prior knows from its partial view, align it (yaw search, "
        "then continuous yaw / position / scale refinement against the observed surface and the space seen "
        "free) and write the completed shapes into the map's predicted layer: observed voxels are never "
        "changed, no object voxel goes into space seen free or behind another observed surface. Writes the "
        "refined map to --out and the object list (id, class, pose, extents, confidence) as JSON beside it.",
    )
    parser.add_argument("map", help="saved map (map.ssrmap or its directory)")
    parser.add_argument("--out", required=True, help="refined map file (a directory: written as DIR/map.ssrmap)")
    parser.add_argument("--objects", help="object list JSON (default: beside --out, named objects.json)")
    parser.add_argument("--config", help="mapping yaml whose 'objects' section sets the stage's parameters (and "
                        "'planning.floor_height' the floor objects stand on where none was seen; default 0, REP 105)")
    parser.add_argument("--weights", help="shape prior weights, several separated by commas (each object is completed by "
                        "every one, the best-fitting shape kept; default: the packaged models/shape_prior_small.pt, "
                        "models/shape_prior_rooms2.pt and models/shape_prior_rooms.pt)")
    parser.add_argument("--surface", action="store_true",
                        help="also write the band outside each completed shape, so the objects' own surfaces are meshed "
                        "(objects.surface; default: only their inside, as solid predicted voxels)")
    parser.add_argument("--list-only", action="store_true", help="only find and list the instances; the map is written unchanged")
    parser.add_argument("--taxonomy", default="", help="class taxonomy yaml (default: the packaged one)")
    parser.add_argument("--device", default="cpu", help="torch device of the map and the prior (cpu, cuda, cuda:N)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ssr_ros.config import load_yaml_config
    from ssr_ros.map.map_file import MAP_FILE
    from ssr_ros.map.semantic_tsdf import read_map
    from ssr_ros.objects.object_list import save_object_list
    from ssr_ros.objects.refinement import ObjectRefinementConfig, configured_prior, refine_objects
    from ssr_ros.planning.config import PlanningConfig
    from ssr_ros.taxonomy import ClassTaxonomy

    config = load_yaml_config(ObjectRefinementConfig, args.config, "objects") if args.config else ObjectRefinementConfig()
    if args.weights:
        config.weights = args.weights
    if args.list_only:
        config.type = "none"
    if args.surface:
        config.surface = True
    config.device = args.device
    config.validate()
    taxonomy = ClassTaxonomy.load(args.taxonomy or None)
    tsdf_map = read_map(args.map, args.device, taxonomy)
    prior = configured_prior(config)  # config.device is args.device
    planning = load_yaml_config(PlanningConfig, args.config, "planning") if args.config else PlanningConfig()
    result = refine_objects(tsdf_map, taxonomy.names, prior, config, floor_height=planning.validate().floor_height)
    out = Path(args.out)
    if out.is_dir() or args.out.endswith("/"):
        out = out / MAP_FILE
    tsdf_map.save(out)
    objects_path = Path(args.objects) if args.objects else out.parent / "objects.json"
    save_object_list(result.objects, objects_path, extra={"map": str(out), "voxel_size": tsdf_map.voxel_size})
    print(json.dumps({"instances": len(result.objects), "refined": sum(o.refined for o in result.objects),
                      "written_voxels": result.written_voxels}))
    print(f"wrote {out} and {objects_path}")
    return 0
