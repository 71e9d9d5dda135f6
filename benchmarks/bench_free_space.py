"""Cost of the seen-free layer: integration speed and memory with ``free_space`` on and off.

    PYTHONPATH=. python benchmarks/bench_free_space.py [--frames 60] [--seed 3] [--repeat 3]

Renders a generated room's RGB-D sequence once (640x480, noisy depth, labels), then fuses it
with the layer off and on, alternating runs (the CPU may be shared), and reports the median
frames per second (wall and process CPU time), the time of the free-space step alone, the
map's bytes and the layer's bytes and cells. The first frame of every run is not timed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene
from ssr_ros.map import SemanticTSDF, TSDFConfig
from ssr_ros.map import free_space as free_space_module


def fuse(frames, config: TSDFConfig) -> dict:
    tsdf_map = SemanticTSDF(config, num_classes=21)
    tsdf_map.integrate(frames[0])
    observe_s = 0.0
    layer = tsdf_map.free_space
    if layer is not None:  # time the free-space step inside the real integration calls
        observe, mark = layer.observe, layer.mark

        def timed(fn):
            def wrapper(*args, **kwargs):
                nonlocal observe_s
                t0 = time.perf_counter()
                result = fn(*args, **kwargs)
                observe_s += time.perf_counter() - t0
                return result
            return wrapper

        layer.observe, layer.mark = timed(observe), timed(mark)
    c0, t0 = time.process_time(), time.perf_counter()
    for frame in frames[1:]:
        tsdf_map.integrate(frame)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stats = tsdf_map.stats()
    n = len(frames) - 1
    return {
        "fps": n / wall, "cpu_fps": n / cpu, "free_space_ms_per_frame": 1000 * observe_s / n,
        "memory_bytes": stats["memory_bytes"], "free_space_bytes": stats["free_space_bytes"],
        "free_cells": stats["free_cells"], "backend": stats["backend"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "native"])
    parser.add_argument("--voxel-size", type=float, default=0.05)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scene = generate_scene(args.seed)
    sequence = SyntheticSequence(
        scene, SequenceConfig(trajectory=TrajectoryConfig(num_frames=args.frames)), seed=args.seed
    )
    frames = [sequence.view(i).frame for i in range(len(sequence))]
    variants = {
        "off": TSDFConfig(voxel_size=args.voxel_size, backend=args.backend, free_space=False),
        "on (stride 4)": TSDFConfig(voxel_size=args.voxel_size, backend=args.backend, free_space_pixel_stride=4),
        "on (stride 8, default)": TSDFConfig(voxel_size=args.voxel_size, backend=args.backend),
        "on (stride 16)": TSDFConfig(voxel_size=args.voxel_size, backend=args.backend, free_space_pixel_stride=16),
    }
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, config in variants.items():
            runs[name].append(fuse(frames, config))
    base = statistics.median(r["fps"] for r in runs["off"])
    rows = []
    for name, results in runs.items():
        median = sorted(results, key=lambda r: r["fps"])[len(results) // 2]
        rows.append({"free_space": name, **{k: round(v, 2) if isinstance(v, float) else v for k, v in median.items()},
                     "fps_runs": [round(r["fps"], 1) for r in results], "vs_off": round(median["fps"] / base, 3)})
    report = {
        "machine": f"{platform.machine()} {platform.processor()}, {torch.get_num_threads()} torch thread(s)",
        "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
        "frames": len(frames), "image": "640x480", "voxel_size": args.voxel_size, "seed": args.seed,
        "room_type": scene.room_type, "bitmap_limit": free_space_module.BITMAP_LIMIT, "rows": rows,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
