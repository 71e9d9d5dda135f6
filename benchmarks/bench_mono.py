"""Monocular mode: speed of the depth + semantics predictor, depth accuracy, and the RGB-only map.

    python benchmarks/bench_mono.py speed  [--weights W] [--frames 60]
    python benchmarks/bench_mono.py depth  [--weights W] [--finetuned W7 --finetuned-folder 7scenes] [--config YAML --name VARIANT]
    python benchmarks/bench_mono.py fscore [--weights W] [--seed 2000] --frames 90 [--config YAML --name VARIANT]
    python benchmarks/bench_mono.py rooms  [--weights W]

``speed``: frames/s of :class:`ssr_ros.mono.predictor.MonoPredictor` on 320x240 color frames
(resize to the network's size, network, depth / confidence / class probabilities back at 320x240),
with 1 and 2 torch threads, beside the peer: the project's 2D segmenter (``Segmenter2d``, the
shipped shape) on the same frames; runs alternate and the median counts. Also the plane sweep of
one key frame (160x120) with 2 sources x 16 planes against the defaults' 4 x 32.

``depth``: AbsRel, RMSE, delta<1.25 of the predicted depth (before any pixel is dropped) against
exact depth of generated rooms never used in training or validation (seeds 2000-2004, 20 frames
each at 320x240) and against the recorded depth of the held-out last 20% of the real sequences
(``$SSR_SHARED_DIR/data``, 640x480, depth <= 6 m), per frame then averaged; beside them the
same metrics of a constant depth (the median of the set's depths) and, on the generated rooms,
the semantic head's pixel accuracy and mIoU against the exact class ids.

``fscore``: one held-out generated room (``ssr synth``, 320x240), reconstructed from RGB-D and
from RGB only (``--input-mode rgb``) with the same frames, no completion, mesh scored with
``--gt`` (F-score at 5 cm); ``--config`` gives both runs a parameter yaml (e.g. ``mono.*``
settings) and ``--name`` names the variant's result file (``depth`` takes the yaml's ``mono`` section too).

``rooms``: per generated room, the depth AbsRel at 160x120 (the network's working size: no
resize) and at 320x240 (color shrunk to 160x120 and depth enlarged back), and the AbsRel left
after scaling each frame's prediction by its median ratio to the truth (what a per-frame scale
fix could at best reach): held-out rooms 2000-2004, validation rooms 1000-1003 and training
rooms 0-3, 20 frames each along the training path.

Results go to benchmarks/results/mono_<what>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssr_ros.mono.data import resolve_data_path  # noqa: E402
from ssr_ros.mono.losses import depth_metrics  # noqa: E402
from ssr_ros.mono.predictor import MonoConfig, MonoPredictor, default_mono_weights  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
REAL = {"7scenes": "${SSR_SHARED_DIR}/data/7scenes_tsdf_fusion/data",
        "shelf": "${SSR_SHARED_DIR}/data/princeton_shelf_tsdf_fusion/old-version/data/sample"}


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, load {os.getloadavg()[0]:.1f}"


def write(name: str, result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"mono_{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def speed(args) -> dict:
    from ssr_ros.completion.segmenter import Segmenter2d, SegmenterConfig
    from ssr_ros.geometry import CameraIntrinsics

    predictor = MonoPredictor(MonoConfig(weights=args.weights, device="cpu"), num_classes=21)
    segmenter = Segmenter2d(SegmenterConfig()).eval()
    K = CameraIntrinsics(0.96 * 320, 0.96 * 320, 159.5, 119.5, 320, 240)
    rng = np.random.default_rng(0)
    frames = [(rng.random((240, 320, 3)) * 255).astype(np.uint8) for _ in range(8)]
    result = {"machine": machine(), "image": "320x240", "weights": args.weights,
              "network_input": f"{predictor.model.config.input_width}x{predictor.model.config.input_height}"}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = {"mono": [], "segmenter": []}
        for i in range(5):
            predictor(frames[i % 8], K)
        for i in range(args.frames):
            rgb = frames[i % 8]
            start = time.perf_counter()
            predictor(rgb, K)
            times["mono"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with torch.no_grad():
                segmenter.predict_probs(torch.from_numpy(rgb).float() / 255.0)
            times["segmenter"].append(time.perf_counter() - start)
        mono, seg = statistics.median(times["mono"]), statistics.median(times["segmenter"])
        result[f"threads_{threads}"] = {"mono_fps": round(1 / mono, 1), "mono_ms": round(1000 * mono, 2),
                                        "segmenter_fps": round(1 / seg, 1), "mono_time_over_segmenter": round(mono / seg, 3)}
    result["plane_sweep_1_thread"] = sweep_speed(args.frames)
    return result


def sweep_speed(runs: int) -> dict:
    """Milliseconds of one key frame's plane sweep at the sweep's 160x120 (a 320x240 camera shrunk by
    2) with 2 sources x 16 planes (the earlier defaults) and 4 x 32 (the defaults), runs alternating."""
    from ssr_ros.geometry import CameraIntrinsics
    from ssr_ros.mono.stereo import StereoView, plane_sweep

    torch.set_num_threads(1)
    K = CameraIntrinsics(0.96 * 160, 0.96 * 160, 79.5, 59.5, 160, 120)
    rng = np.random.default_rng(0)

    def view(x: float) -> StereoView:
        T = np.eye(4)
        T[0, 3] = x
        return StereoView(torch.from_numpy(rng.random((120, 160)).astype(np.float32)), K, T)

    reference, sources = view(0.0), [view(0.05 * (i + 1)) for i in range(4)]
    depth, sigma = torch.full((120, 160), 2.0), torch.full((120, 160), 0.2)
    times = {"sources_2_planes_16": [], "sources_4_planes_32": []}
    for _ in range(max(3, runs // 4)):
        for name, count, planes in (("sources_2_planes_16", 2, 16), ("sources_4_planes_32", 4, 32)):
            start = time.perf_counter()
            plane_sweep(reference, sources[:count], depth, sigma, planes=planes)
            times[name].append(time.perf_counter() - start)
    out = {name: round(1000 * statistics.median(t), 1) for name, t in times.items()}
    return {**{f"{k}_ms": v for k, v in out.items()}, "ratio": round(out["sources_4_planes_32"] / out["sources_2_planes_16"], 2)}


def frame_metrics(predictor, frames) -> dict:
    """Mean over frames of the per-frame depth metrics, the same for a constant depth (the median of
    all the frames' depths: a reference a network must beat), and, where frames have class ids,
    pixel accuracy and mIoU of the semantic head. frames: iterable of (rgb, depth, intrinsics, labels | None)."""
    rows, targets, predictions, truths = [], [], [], []
    for rgb, depth, K, labels in frames:
        prediction = predictor(rgb, K, semantics=labels is not None)
        rows.append(depth_metrics(torch.from_numpy(prediction.depth_unfiltered), torch.from_numpy(depth)))
        targets.append(depth)
        if labels is not None:
            predictions.append(prediction.labels.ravel())
            truths.append(np.asarray(labels).ravel())
    keep = [i for i, r in enumerate(rows) if r["pixels"]]
    out = {k: round(float(np.mean([rows[i][k] for i in keep])), 4) for k in ("abs_rel", "rmse", "delta1")}
    valid = np.concatenate([t[t > 0] for t in targets])
    constant = float(np.median(valid))
    baseline = [depth_metrics(torch.full(t.shape, constant), torch.from_numpy(t)) for t in (targets[i] for i in keep)]
    out["constant_depth"] = {"depth_m": round(constant, 3),
                             **{k: round(float(np.mean([b[k] for b in baseline])), 4) for k in ("abs_rel", "rmse", "delta1")}}
    if truths:
        p, t = np.concatenate(predictions), np.concatenate(truths)
        known = t > 0
        ious = [float(((p == c) & (t == c) & known).sum()) / max(float((((p == c) | (t == c)) & known).sum()), 1.0)
                for c in np.unique(t[known])]
        out["semantic_pixel_accuracy"] = round(float((p[known] == t[known]).mean()), 4)
        out["semantic_miou"] = round(float(np.mean(ious)), 4)
    return out | {"frames": len(keep)}


def generated_frames(seeds, count: int):
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    for seed in seeds:
        sequence = SyntheticSequence(generate_scene(seed), SequenceConfig(
            width=320, height=240, trajectory=TrajectoryConfig(num_frames=count, frame_rate=2.0)), seed=seed)
        for i in range(len(sequence)):
            view = sequence.view(i)
            yield view.frame.rgb, np.asarray(view.rendering.depth, np.float32), sequence.intrinsics, view.rendering.class_ids


def rooms(args) -> dict:
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    torch.set_num_threads(args.threads)
    predictor = MonoPredictor(MonoConfig(weights=args.weights, device="cpu"), num_classes=21)
    groups = {"held_out": range(2000, 2005), "validation": range(1000, 1004), "training": range(0, 4)}
    result = {"machine": machine(), "weights": args.weights, "frames_per_room": 20}
    for group, seeds in groups.items():
        rows = {}
        for seed in seeds:
            scene = generate_scene(seed)
            row = {}
            for width, height in ((160, 120), (320, 240)):
                sequence = SyntheticSequence(scene, SequenceConfig(width=width, height=height, trajectory=TrajectoryConfig(
                    num_frames=20, frame_rate=2.0)), seed=seed)
                abs_rel, scaled, ratio = [], [], []
                for i in range(len(sequence)):
                    view = sequence.view(i).rendering
                    truth = np.asarray(view.depth, np.float32)
                    known = np.isfinite(truth) & (truth > 0)
                    predicted = predictor(view.rgb, sequence.intrinsics, semantics=False).depth_unfiltered[known]
                    truth = truth[known]
                    r = float(np.median(truth / predicted))
                    abs_rel.append(float(np.mean(np.abs(predicted - truth) / truth)))
                    scaled.append(float(np.mean(np.abs(r * predicted - truth) / truth)))
                    ratio.append(r)
                row[f"{width}x{height}"] = {"abs_rel": round(float(np.mean(abs_rel)), 4),
                                            "abs_rel_median_scaled": round(float(np.mean(scaled)), 4),
                                            "truth_over_predicted_median": round(float(np.median(ratio)), 3)}
            rows[str(seed)] = row
            print(group, seed, row, flush=True)
        result[group] = {"rooms": rows, **{f"mean_{size}": {
            k: round(float(np.mean([r[size][k] for r in rows.values()])), 4) for k in ("abs_rel", "abs_rel_median_scaled")}
            for size in ("160x120", "320x240")}}
    return result


def held_out_frames(folder: str, fraction: float = 0.8, max_depth: float = 6.0):
    from ssr_ros.data.folders import open_folder

    reader = open_folder(resolve_data_path(folder))
    for i in range(int(round(len(reader) * fraction)), len(reader)):
        frame = reader.frame(i)
        depth = np.where(frame.depth <= max_depth, frame.depth, 0.0).astype(np.float32)
        yield frame.rgb, depth, frame.intrinsics, None


def mono_overrides(path: str) -> dict:
    """The ``mono.*`` parameters of a parameter yaml (the node's or a plain mapping; empty: none)."""
    from ssr_ros.config import read_parameter_file

    return read_parameter_file(path).get("mono", {}) if path else {}


def depth(args) -> dict:
    torch.set_num_threads(args.threads)
    overrides = mono_overrides(args.config)
    result = {"machine": machine(), "weights": args.weights, "mono": overrides}
    predictor = MonoPredictor(MonoConfig(**{"weights": args.weights, "device": "cpu", **overrides}), num_classes=21)
    result["generated_2000_2004"] = frame_metrics(predictor, generated_frames(range(2000, 2005), 20))
    for name, folder in REAL.items():
        if resolve_data_path(folder).exists():
            result[f"{name}_last_20pct"] = frame_metrics(predictor, held_out_frames(folder))
    for path, name in zip(args.finetuned or [], args.finetuned_folder or []):
        tuned = MonoPredictor(MonoConfig(**{**overrides, "weights": path, "device": "cpu"}), num_classes=21)
        result[f"{name}_last_20pct_finetuned"] = frame_metrics(tuned, held_out_frames(REAL[name])) | {"weights": path}
    return result


def fscore(args) -> dict:
    from ssr_ros.cli.main import main

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    run = work / f"room{args.seed}_{args.frames}frames"  # the cached room is the one of this length
    if not (run / "gt").exists():
        assert main(["synth", "--seed", str(args.seed), "--out", str(run), "--frames", str(args.frames), "--width", "320",
                     "--height", "240", "--format", "folder", "--voxel-size", "0.05"]) == 0
    result = {"machine": machine(), "weights": args.weights, "room": args.seed, "frames": args.frames,
              "config": args.config}
    for mode in ("rgbd", "rgb"):
        out = work / f"room{args.seed}_{mode}{'_' + args.name if args.name else ''}"
        command = ["reconstruct", str(run / "folder"), "--out", str(out), "--gt", str(run / "gt"), "--no-completion",
                   "--no-progress", "--no-previews", "--input-mode", mode, "--mono-weights", args.weights]
        if args.config:
            command += ["--config", args.config]
        assert main(command) == 0
        summary = json.loads((out / "summary.json").read_text())
        mesh = summary["metrics"]["mesh"]
        result[mode] = {"frames_integrated": summary["frames"]["integrated"], "fscore": round(mesh["fscore"], 4),
                        "precision": round(mesh["precision"], 4), "recall": round(mesh["recall"], 4),
                        "accuracy_cm": round(100 * mesh["accuracy"], 2), "completeness_cm": round(100 * mesh["completeness"], 2)}
        if mode == "rgb":
            result[mode]["mono"] = summary["mono"]
    result["rgb_over_rgbd_fscore"] = round(result["rgb"]["fscore"] / max(result["rgbd"]["fscore"], 1e-9), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "depth", "fscore", "rooms"])
    parser.add_argument("--weights", default=str(default_mono_weights()))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--work", default=str(REPO / "out" / "bench_mono"))
    parser.add_argument("--config", default="", help="fscore: parameter yaml for both runs (e.g. mono.* settings); "
                        "depth: its mono section")
    parser.add_argument("--name", default="", help="fscore: suffix of the result file (a variant's name)")
    parser.add_argument("--finetuned", nargs="*", help="fine-tuned weights, one per --finetuned-folder")
    parser.add_argument("--finetuned-folder", nargs="*", choices=sorted(REAL))
    args = parser.parse_args()
    result = {"speed": speed, "depth": depth, "fscore": fscore, "rooms": rooms}[args.what](args)
    write(args.what + ("" if args.what != "fscore" else f"_{args.seed}") + (f"_{args.name}" if args.name else ""), result)


if __name__ == "__main__":
    main()
