"""``ssr calibrate-completion``: fit the occupancy probability and confidence threshold of a network."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CALIBRATION_SEEDS = list(range(1500, 1510))
"""Generated rooms used for calibration: neither training (0-999), validation (1000-1499) nor
evaluation (2000+) rooms."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate-completion",
        help="calibrate a completion network's confidence on held-out generated rooms",
        description="Fuse held-out generated rooms, let the network predict them, fit P(occupied) "
        "from its TSDF against the exact ground truth (Platt scaling) and P(surface right) of each predicted "
        "surface voxel from the write-back gate's features of it (logistic regression), pick the smallest "
        "surface-confidence threshold from which the predicted mesh vertices reach the target precision "
        "(pooled and in 90 % of resamples of the rooms), and write the weights with that calibration (the pipeline's write-back gate uses it when "
        "completion.min_confidence is 0).",
    )
    parser.add_argument("--weights", default="", help="weights to calibrate (default: the packaged model)")
    parser.add_argument("--out", required=True, help="calibrated weights file to write (may equal --weights)")
    parser.add_argument("--seeds", type=int, nargs="+", default=CALIBRATION_SEEDS, help="calibration room seeds")
    parser.add_argument("--frames", type=int, default=40, help="frames per room (default: 40)")
    parser.add_argument("--width", type=int, default=160, help="image width (default: 160)")
    parser.add_argument("--height", type=int, default=120, help="image height (default: 120)")
    parser.add_argument("--target-precision", type=float, default=0.85,
                        help="fraction of predicted mesh vertices within 5 cm of the true surface the threshold must reach (default: 0.85)")
    # choices: ssr_ros.completion.symmetry.SYMMETRY_COUNTS, written out so that the CLI starts without torch
    parser.add_argument("--symmetries", type=int, choices=[1, 2, 4, 8], default=8,
                        help="average the network over this many of each chunk's symmetries about the vertical axis "
                        "(mirror images in x and y, quarter turns), as the pipeline then does by default (default: 8)")
    parser.add_argument("--report", help="write the reliability table and precision curve here (JSON)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ssr_ros.completion_calibration import calibrate
    from ssr_ros.completion.inference import CompletionConfig, gate_settings
    from ssr_ros.completion.training import SceneDataConfig
    from ssr_ros.completion.weights import default_weights_path, load_model, save_model, weights_metadata
    from ssr_ros.map.config import TSDFConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.weights or str(default_weights_path())
    model = load_model(path, expected_type="ssr_unet")
    contract = model.contract
    data = SceneDataConfig(frames_per_scene=args.frames, image_width=args.width, image_height=args.height,
                           map=TSDFConfig(voxel_size=contract.voxel_size))
    settings = gate_settings(CompletionConfig(), contract.calibration)
    calibration, report = calibrate(model, args.seeds, data, settings, args.target_precision, progress=True,
                                    symmetries=args.symmetries)
    save_model(model, args.out, metadata=weights_metadata(path), contract=contract.with_calibration(calibration))
    print(f"P(occupied) = sigmoid({calibration.scale:.3f} * (-tsdf / truncation) + {calibration.bias:.3f})")
    if calibration.surface_features:
        terms = " + ".join(f"{w:.3f} * {n}" for n, w in zip(calibration.surface_features, calibration.surface_weights))
        auc = report["surface_auc"]
        print(f"P(surface right) = sigmoid({terms} + {calibration.surface_weights[-1]:.3f})"
              f" (AUC {auc:.3f} on {report['surface_candidates']} surface candidates)" if auc is not None else "")
    print("reliability (occupancy of candidate voxels):")
    print("  bin        count  predicted  observed")
    for row in report["reliability"]:
        print(f"  {row['bin']:9s} {row['count']:7d}  {row['predicted']:9.3f}  {row['observed']:8.3f}")
    print("precision of predicted mesh vertices (within 5 cm of the GT surface) by threshold:")
    for row in report["precision_curve"]:
        precision = "-" if row["precision"] is None else f"{row['precision']:.3f}"
        bound = row.get("precision_bound")
        bound = "" if bound is None else f" (in 90 % of resamples of the rooms >= {bound:.3f})"
        print(f"  confidence >= {row['threshold']:.2f}: {row['predicted_vertices']:7d} vertices, precision {precision}{bound}")
    if calibration.min_confidence < 1.0:
        print(f"min_confidence {calibration.min_confidence:.3f}: predicted surface precision >= {args.target_precision:.2f}")
    else:
        best = report["best_precision"]
        print(f"no threshold reaches precision {args.target_precision:.2f} (best {best if best is not None else 'n/a'}); "
              "min_confidence 1.0: the pipeline withholds these weights")
    print(f"weights: {Path(args.out).resolve()}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1) + "\n")
    return 0
