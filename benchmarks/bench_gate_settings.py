"""How the write-back gate's reach trades mesh F-score against precision (generated rooms).

For each gate setting (``completion.max_distance`` x ``completion.min_enclosure``) the surface
confidence is refitted on the calibration rooms (1500-1505) with that setting's candidates, then
rooms never used for training, calibration or the held-out evaluation (default 1510-1513) are
completed at several confidence thresholds and their whole meshes scored against the exact
ground truth (F-score, precision, recall at 5 cm; precision of the predicted vertices alone).

    python benchmarks/bench_gate_settings.py [--weights W] [--rooms 1510 1511] [--distances 0.1 0.2]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="", help="completion weights (default: the packaged model)")
    parser.add_argument("--rooms", type=int, nargs="+", default=[1510, 1511, 1512, 1513])
    parser.add_argument("--distances", type=float, nargs="+", default=[0.1, 0.2], help="max_distance values, metres")
    parser.add_argument("--enclosures", type=int, nargs="+", default=[4, 5], help="min_enclosure values")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from ssr_ros.cli.calibrate_completion_command import CALIBRATION_SEEDS
    from ssr_ros.completion_calibration import CalibrationSamples, _with_surface_model, room_samples
    from ssr_ros.completion.contract import Calibration
    from ssr_ros.completion.gating import GateSettings
    from ssr_ros.completion.inference import apply_gate, write_predictions
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.completion.training import SceneDataConfig
    from ssr_ros.completion.weights import default_weights_path, load_model
    from ssr_ros.evaluation.comparison import surface_scores
    from ssr_ros.evaluation.mesh import sample_surface
    from ssr_ros.map.config import TSDFConfig
    from ssr_ros.map.semantic_tsdf import SemanticTSDF

    torch.set_num_threads(args.threads)
    model = load_model(args.weights or str(default_weights_path()), expected_type="ssr_unet")
    data = SceneDataConfig(frames_per_scene=40, image_width=160, image_height=120,
                           map=TSDFConfig(voxel_size=model.contract.voxel_size))
    print("| max_distance m | min_enclosure | threshold | mesh precision | recall | F-score | fusion F-score | predicted-vertex precision | predicted vertices |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for distance in args.distances:
            for enclosure in args.enclosures:
                settings = GateSettings(min_confidence=0.0, max_distance=distance, min_enclosure=enclosure,
                                        enclosure_radius=1.5)
                parts = [room_samples(model, seed, data, settings, Path(tmp))[0] for seed in CALIBRATION_SEEDS]
                samples = CalibrationSamples.concatenate(parts)
                calibration = _with_surface_model(Calibration(), samples.features, samples.surface_right)
                rows: dict[float, list] = {t: [] for t in args.thresholds}
                fusion = []
                for seed in args.rooms:
                    _, room = room_samples(model, seed, data, settings, Path(tmp))
                    scene, _ = synthetic_sequence(seed, data)
                    gt = scene.gt_mesh()
                    gt_points = sample_surface(gt.vertices, gt.faces, 200_000, seed=1)
                    box = scene.interior_bounds()
                    base = SemanticTSDF.load(room.map_path, room.device).mesh()
                    fusion.append(surface_scores(base.vertices, base.triangles, None, gt_points, box, 0.05)["fscore"])
                    for t in args.thresholds:
                        gated = apply_gate(room.prediction, dataclasses.replace(settings, min_confidence=t), calibration)
                        copy = SemanticTSDF.load(room.map_path, room.device)
                        write_predictions(copy, gated)
                        mesh = copy.mesh()
                        rows[t].append(surface_scores(mesh.vertices, mesh.triangles, mesh.predicted, gt_points, box, 0.05))
                for t, scores in rows.items():
                    mean = {k: float(np.mean([s[k] for s in scores if s[k] is not None] or [np.nan]))
                            for k in ("precision", "recall", "fscore", "predicted_precision")}
                    count = sum(s["predicted_vertices"] or 0 for s in scores)
                    print(f"| {distance:g} | {enclosure} | {t:g} | {mean['precision']:.3f} | {mean['recall']:.3f} | "
                          f"{mean['fscore']:.3f} | {np.mean(fusion):.3f} | {mean['predicted_precision']:.3f} | {count} |", flush=True)


if __name__ == "__main__":
    main()
