"""``ssr evaluate``: score a reconstruction against ground truth, print tables, write JSON.

Inputs: a GT directory written by ``ssr synth`` (``gt_volume.npz``, ``gt_mesh.ply``) or the
files themselves, and a reconstruction volume (``.npz``, keys in
``ssr_ros.evaluation.report``) and/or mesh (PLY/OBJ). Metrics: completion IoU /
precision / recall (all, observed, unobserved), semantic mIoU / mAcc, mesh accuracy /
completeness / precision / recall / F-score, and eta_3D when ``--fps`` is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ssr_ros.errors import DatasetError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare a reconstruction with ground truth (completion, semantics, mesh, timing)",
        description="Score a reconstructed volume and/or mesh against a ground truth written by 'ssr synth'; "
        "prints tables and writes the numbers as JSON.",
    )
    parser.add_argument("--gt", help="GT directory (holding gt_volume.npz and gt_mesh.ply)")
    parser.add_argument("--gt-volume", help="GT volume .npz (default: <gt>/gt_volume.npz)")
    parser.add_argument("--gt-mesh", help="GT mesh (default: <gt>/gt_mesh.ply)")
    parser.add_argument("--volume", help="reconstruction: a saved map (map.ssrmap or the folder holding it) or a volume .npz "
                        "(origin_voxel, voxel_size, occupied|tsdf, class_ids|semantics[, observed])")
    parser.add_argument("--mesh", help="reconstruction mesh (PLY; OBJ and others need trimesh)")
    parser.add_argument("--threshold", type=float, default=0.05, help="mesh F-score threshold, metres (default: 0.05)")
    parser.add_argument("--fps", type=float, default=None, help="frames per second of the run, for eta_3D")
    parser.add_argument("--points", type=int, default=200_000, help="surface samples per mesh (default: 200000)")
    parser.add_argument("--taxonomy", default=None, help="class taxonomy yaml (default: scannet20)")
    parser.add_argument("--json", default=None, help="write the report here (default: print only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.evaluation.report import evaluate_reconstruction, format_table, load_mesh, load_volume, map_volume
    from ssr_ros.taxonomy import ClassTaxonomy

    gt_dir = Path(args.gt) if args.gt else None
    gt_volume_path = Path(args.gt_volume) if args.gt_volume else (gt_dir / "gt_volume.npz" if gt_dir else None)
    gt_mesh_path = Path(args.gt_mesh) if args.gt_mesh else (gt_dir / "gt_mesh.ply" if gt_dir else None)
    if args.volume is None and args.mesh is None:
        raise DatasetError("nothing to evaluate: pass --volume and/or --mesh")
    if args.volume is not None and (gt_volume_path is None or not gt_volume_path.exists()):
        raise DatasetError(f"--volume needs a GT volume; '{gt_volume_path}' not found (pass --gt or --gt-volume)")
    if args.mesh is not None and (gt_mesh_path is None or not gt_mesh_path.exists()):
        raise DatasetError(f"--mesh needs a GT mesh; '{gt_mesh_path}' not found (pass --gt or --gt-mesh)")
    taxonomy = ClassTaxonomy.load(args.taxonomy)
    gt_volume = load_volume(gt_volume_path) if args.volume else {}
    pred_volume = None
    if args.volume:
        pred_volume = (map_volume(args.volume, gt_volume, taxonomy) if not str(args.volume).endswith(".npz")
                       else load_volume(args.volume))
    report = evaluate_reconstruction(
        gt_volume=gt_volume,
        pred_volume=pred_volume,
        num_classes=taxonomy.num_classes,
        class_names=taxonomy.names,
        gt_mesh=load_mesh(gt_mesh_path) if args.mesh else None,
        pred_mesh=load_mesh(args.mesh) if args.mesh else None,
        threshold=args.threshold,
        fps=args.fps,
        num_points=args.points,
    )
    report["inputs"] = {"gt_volume": str(gt_volume_path) if args.volume else None, "gt_mesh": str(gt_mesh_path) if args.mesh else None,
                        "volume": args.volume, "mesh": args.mesh}
    print(format_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"report: {args.json}")
    return 0
