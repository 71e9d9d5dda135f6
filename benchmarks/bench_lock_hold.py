"""How long each of the node's outputs holds the map's lock (time in which no frame can be fused).

    python benchmarks/bench_lock_hold.py [--frames 100] [--width 640 --height 480] [--threads 1]

Fuses ``--frames`` frames of the floor tour (``bench_soak.render_frames``: cached in the temporary
directory) into a ``MappingPipeline`` at the default parameters (completion.type none), then runs
what the node runs on its output timers: ``stats()`` (diagnostics, every second), ``mesh_update()``
(every second; here once after each batch of frames, and once for the whole map),
``planning_outputs()`` (the occupancy grid and distance slices, every ``voxel_period_s``) and
``voxel_outputs()``. The pipeline's lock is wrapped to time how long it is held per call (wall
time, all holdings of a call added up); the wall and CPU time of each call are reported beside it
(CPU time is what a call costs the machine whatever else runs on it).

``--threads`` is torch's CPU thread count for the whole process (the node since this change sets
``map.threads`` = 1 for its process; before it, threads that did not switch it ran with torch's
default, one per core). Run the same command with ``PYTHONPATH`` pointing at another checkout to
compare code; the script uses only the pipeline's public methods and its ``lock`` attribute.
``--completion`` runs the pipeline with completion as configured by default (network and room
layout) and measures ``complete()`` after each batch, as the node's completion thread runs it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np


class TimedLock:
    """An RLock that records how long each outermost holding lasted."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._since = 0.0
        self.holds: list[float] = []

    def acquire(self, *args, **kwargs):
        got = self._lock.acquire(*args, **kwargs)
        if got:
            self._depth += 1
            if self._depth == 1:
                self._since = time.perf_counter()
        return got

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.holds.append(time.perf_counter() - self._since)
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()


def load_frames(count: int, width: int, height: int):
    """The floor-tour frames of ``bench_soak`` (rendered and cached on first use), read with NumPy
    alone so that another checkout's ``ssr_ros`` can be measured on the same frames."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_soak import frame_cache_path

    path = frame_cache_path(count, width, height, 30.0)
    if not path.exists():
        from bench_soak import render_frames

        render_frames(count, width, height, 30.0)
    from ssr_ros.geometry import CameraIntrinsics, Frame

    class Frames:
        def __init__(self, data):
            self.data = {k: data[k] for k in data.files}
            fx, fy, cx, cy, w, h = self.data["intrinsics"].tolist()
            self.intrinsics = CameraIntrinsics(fx, fy, cx, cy, int(w), int(h))

        def __len__(self):
            return len(self.data["depth_mm"])

        def frame(self, i):
            d = self.data
            return Frame(d["depth_mm"][i].astype(np.float32) * np.float32(0.001), self.intrinsics, d["poses"][i].copy(),
                         rgb=d["rgb"][i], labels=d["labels"][i], stamp_ns=int(d["stamps_ns"][i]))

    with np.load(path) as data:
        return Frames(data)


def measure(lock: TimedLock, fn) -> tuple[float, float, float, float]:
    """(wall seconds, CPU seconds of the process, total seconds the lock was held, longest single
    holding) of one call."""
    lock.holds.clear()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu, sum(lock.holds), max(lock.holds, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--batch", type=int, default=30, help="frames between incremental mesh updates (1 s at 30 Hz)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the process (0: torch's default)")
    parser.add_argument("--label", default="", help="name of this run in the printed table row")
    parser.add_argument("--completion", action="store_true",
                        help="completion as configured by default (network and room layout): complete() after each batch")
    args = parser.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    import ssr_ros
    from ssr_ros.config import config_from_dict, nest_dotted
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    stack = load_frames(args.frames, args.width, args.height)
    pipeline = MappingPipeline(config_from_dict(PipelineConfig, nest_dotted({} if args.completion else {"completion.type": "none"})))
    pipeline.lock = lock = TimedLock()
    integrate, mesh, complete = [], [], []
    for i in range(len(stack)):
        integrate.append(measure(lock, lambda: pipeline.integrate(stack.frame(i))))
        if (i + 1) % args.batch == 0:
            mesh.append(measure(lock, pipeline.mesh_update))
            if args.completion:
                complete.append(measure(lock, pipeline.complete))
    rows = {
        "stats": [measure(lock, pipeline.stats) for _ in range(5)],
        "mesh_update (per batch)": mesh,
        **({"complete() (per batch; the layout every layout.period_s)": complete} if complete else {}),
        "planning_outputs": [measure(lock, lambda: pipeline.planning_outputs(with_3d=False)) for _ in range(3)],
        "voxel_outputs": [measure(lock, pipeline.voxel_outputs) for _ in range(2)],
    }
    stats = pipeline.stats()
    print(f"code: {Path(ssr_ros.__file__).parent.parent}; torch threads {torch.get_num_threads()}; "
          f"{platform.machine()} {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"map {stats['map_bytes'] / 1e6:.0f} MB, {stats['num_blocks']} blocks after {len(stack)} frames of "
          f"{args.width}x{args.height}; integrate median {1e3 * np.median([v[0] for v in integrate]):.1f} ms wall, "
          f"{1e3 * np.median([v[1] for v in integrate]):.1f} ms CPU")
    print("| run | call | wall ms (median) | CPU ms (median) | lock held ms (median / max) | longest holding ms |")
    print("|---|---|---|---|---|---|")
    for name, values in rows.items():
        wall, cpu, held, longest = (np.array([v[k] for v in values]) * 1e3 for k in range(4))
        print(f"| {args.label} | {name} | {np.median(wall):.1f} | {np.median(cpu):.1f} | {np.median(held):.1f} / {held.max():.1f} "
              f"| {longest.max():.1f} |")


if __name__ == "__main__":
    main()
