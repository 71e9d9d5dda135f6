"""Speed of the synthetic data generator: scenes, frames, ground truth, bag size.

    PYTHONPATH=. python benchmarks/synthetic_data.py [--threads 1] [--frames 20] [--json out.json]

Reports wall-clock and process CPU time per frame (CPU time is the fairer number on a
shared machine), frames per minute at 640x480 and 320x240 (rendering alone, and with the
depth-sensor and 2D-predictor models), GT volume and mesh times, and bag bytes per frame.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ssr_ros.data.rosbag_writer import write_bag
from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)", "runs": []}
    for seed in args.seeds:
        scene, wall, _ = timed(lambda: generate_scene(seed))
        run = {"seed": seed, "room_type": scene.room_type, "boxes": len(scene.boxes), "scene_generation_s": round(wall, 4)}
        for width, height in [(640, 480), (320, 240)]:
            config = SequenceConfig(width=width, height=height, trajectory=TrajectoryConfig(num_frames=args.frames))
            seq = SyntheticSequence(scene, config)
            seq.view(0)  # warm-up
            poses = seq.trajectory.poses
            _, wall_r, cpu_r = timed(lambda: [scene.render(p, seq.intrinsics) for p in poses])
            views, wall_s, cpu_s = timed(lambda: [seq.view(i) for i in range(len(seq))])
            key = f"{width}x{height}"
            run[key] = {
                "render_frames_per_min_wall": round(60 * len(poses) / wall_r),
                "render_cpu_s_per_frame": round(cpu_r / len(poses), 4),
                "sensor_frames_per_min_wall": round(60 * len(seq) / wall_s),
                "sensor_cpu_s_per_frame": round(cpu_s / len(seq), 4),
            }
            if width == 640:
                tmp = Path(tempfile.mkdtemp())
                try:
                    write_bag([v.frame for v in views], tmp / "bag")
                    size = sum(p.stat().st_size for p in (tmp / "bag").iterdir())
                    run[key]["bag_bytes_per_frame"] = size // len(views)
                finally:
                    shutil.rmtree(tmp)
        _, wall, _ = timed(lambda: scene.gt_volume(0.05))
        run["gt_volume_5cm_s"] = round(wall, 3)
        mesh, wall, _ = timed(lambda: scene.gt_mesh(0.05))
        run["gt_mesh_5cm_s"] = round(wall, 3)
        run["gt_mesh_faces"] = int(len(mesh.faces))
        results["runs"].append(run)
        print(json.dumps(run))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
