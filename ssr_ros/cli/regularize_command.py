"""``ssr regularize MAP --out MAP2``: regularise the labels of a saved map."""

from __future__ import annotations

import argparse
import dataclasses
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "regularize",
        help="clean up a saved map's labels with the TV-L1 or the learned semantic regulariser",
        description="Run the semantic regulariser on every chunk of MAP (a map.ssrmap or a directory "
        "holding one) and write OUT/map.ssrmap (with regularization.relabel_predicted in --config, voxels completion predicted relabelled; everything "
        "measured unchanged) and OUT/regularized_labels.npz (regularised labels of observed voxels and "
        "labels inferred for unobserved ones, flagged, with confidences).",
    )
    parser.add_argument("map", help="saved map (map.ssrmap or its directory)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--type", choices=["tv_l1", "learned"], help="regulariser (default: the config's, else learned)")
    parser.add_argument("--config", help="mapping yaml whose 'regularization' section sets the stage's parameters")
    parser.add_argument("--weights", help="learned regulariser weights (default: the packaged ones)")
    parser.add_argument("--taxonomy", default="", help="class taxonomy yaml (default: the packaged one)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ssr_ros.config import load_yaml_config
    from ssr_ros.map.map_file import MAP_FILE
    from ssr_ros.map.semantic_tsdf import read_map
    from ssr_ros.regularization.config import RegularizationConfig
    from ssr_ros.regularization.labels import REGULARIZED_FILE, RegularizedLabels
    from ssr_ros.regularization.stage import build_regularizer, regularize_map
    from ssr_ros.taxonomy import ClassTaxonomy

    config = load_yaml_config(RegularizationConfig, args.config, "regularization") if args.config else RegularizationConfig(type="learned")
    if args.type:
        config.type = args.type
    if config.type == "none":
        config.type = "learned"
    if args.weights:
        config.weights = args.weights
    config.validate()
    taxonomy = ClassTaxonomy.load(args.taxonomy or None)
    tsdf_map = read_map(args.map, args.device, taxonomy)
    regularizer = build_regularizer(config, taxonomy.names, tsdf_map.voxel_size, tsdf_map.truncation, args.device)
    store = RegularizedLabels(args.device)
    report = regularize_map(regularizer, tsdf_map, tsdf_map.allocated_block_coords().cpu(), tsdf_map.block_size,
                            config, store, taxonomy.num_classes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tsdf_map.save(out / MAP_FILE)
    store.save(out / REGULARIZED_FILE)
    print(json.dumps({"type": config.type, **dataclasses.asdict(report)}))
    print(f"wrote {out / MAP_FILE} and {out / REGULARIZED_FILE}")
    return 0
