"""Fusion speed of each form of 2D semantics, as a ratio to label ids, on the real 7-Scenes frames.

Every variant fuses the same decoded RGB-D frames (7-Scenes RedKitchen, Kinect v1 640x480,
from ``$SSR_SHARED_DIR/data``) into a fresh map with the compiled kernel; variants alternate
within each repetition and the median time counts, so the ratios come from one run on one
machine. Time is the CPU time of this process (``time.process_time``: the kernel's threads
included, other jobs on a shared machine left out). Semantics are synthetic (no real per-frame labels exist in ../shared/data): ids
1..20 in 80x60-pixel tiles; confidence 0.9; probabilities 0.8 on the tile's id and the rest
spread over the other classes.

    python benchmarks/bench_semantic_inputs.py --frames 60 --repeat 3

Writes its table between the ``semantic-inputs-table`` markers of benchmarks/RESULTS.md (the
section's text around them, what was tried and measured, is written by hand).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_integration import load_sequence, synthetic_labels  # noqa: E402

from ssr_ros.geometry import Frame  # noqa: E402
from ssr_ros.map import SemanticTSDF, TSDFConfig  # noqa: E402

BEGIN, END = "<!-- semantic-inputs-table:begin -->", "<!-- semantic-inputs-table:end -->"


def variants(shape, num_classes=21) -> dict[str, dict]:
    labels = synthetic_labels(shape, num_classes)
    probs = np.full(shape + (num_classes,), 0.2 / (num_classes - 2), np.float32)
    probs[..., 0] = 0.0
    np.put_along_axis(probs, labels[..., None], 0.8, axis=-1)
    class_major = np.ascontiguousarray(np.moveaxis(probs, -1, 0))  # (C, H, W) as a network writes it
    return {
        "label ids (mono8)": {"labels": labels.astype(np.uint8)},
        "label ids + confidence (32FC1)": {"labels": labels.astype(np.uint8),
                                           "label_confidence": np.full(shape, 0.9, np.float32)},
        "probabilities (H, W, 21) float32": {"label_probs": probs},
        "probabilities (H, W, 21) uint8": {"label_probs": np.round(probs * 255).astype(np.uint8)},
        "probabilities (21, H, W) float32, class-major": {"label_probs": np.moveaxis(class_major, 0, -1)},
    }


def run(intrinsics, frames, voxel_size: float, semantics: dict) -> tuple[float, float]:
    # free-space marking is off: it costs the same for every form and would hide the differences
    config = TSDFConfig(voxel_size=voxel_size, truncation_voxels=4.0, max_depth=4.0, min_depth=0.05, free_space=False)
    tsdf_map = SemanticTSDF(config, num_classes=21, device="cpu")
    items = [Frame(d.astype(np.float32) / 1000.0, intrinsics, p, rgb=c, **semantics) for d, c, p in frames]
    tsdf_map.integrate(items[0])  # warm-up, not timed
    start = time.process_time()
    for frame in items[1:]:
        tsdf_map.integrate(frame)
    return time.process_time() - start, tsdf_map.bytes_per_voxel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--voxel-sizes", type=float, nargs="+", default=[0.05, 0.02])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch and kernel threads (default: 1)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    intrinsics, frames = load_sequence("7scenes", args.frames)
    forms = variants(frames[0][0].shape)
    lines = [BEGIN, "", f"7-Scenes, {args.frames} frames, median of {args.repeat} alternating runs, "
             f"{platform.machine()}, {args.threads} thread(s), free-space marking off; frames/s in CPU time "
             f"of the process (load average {os.getloadavg()[0]:.1f} at the start).", "",
             "| voxel | semantics | frames/s | ratio to label ids | bytes/voxel |", "| --- | --- | --- | --- | --- |"]
    for voxel_size in args.voxel_sizes:
        times: dict[str, list[float]] = {name: [] for name in forms}
        bytes_per_voxel = {}
        for _ in range(args.repeat):
            for name, semantics in forms.items():
                seconds, bytes_per_voxel[name] = run(intrinsics, frames, voxel_size, semantics)
                times[name].append(seconds)
        base = statistics.median(times["label ids (mono8)"])
        for name in forms:
            median = statistics.median(times[name])
            fps = (len(frames) - 1) / median
            line = f"| {voxel_size:.2f} m | {name} | {fps:.1f} | {base / median:.2f} | {bytes_per_voxel[name]:.2f} |"
            lines.append(line)
            print(line, flush=True)
    lines += ["", END]
    if args.no_write:
        return
    text = args.output.read_text() if args.output.exists() else ""
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    args.output.write_text(text)


if __name__ == "__main__":
    main()
