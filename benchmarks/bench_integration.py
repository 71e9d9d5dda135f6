"""Integration / meshing throughput of ssr_ros's SemanticTSDF against Open3D's VoxelBlockGrid.

One command, same frames, same voxel size and truncation for both::

    python benchmarks/bench_integration.py            # writes benchmarks/RESULTS.md

Sequences come from ``$SSR_SHARED_DIR/data`` (default ``<repo>/../shared/data``): 7-Scenes
RedKitchen (Kinect v1, 640x480) and the Princeton shelf capture (RealSense-class, 640x480).
Frames are decoded before timing; both libraries receive the same images (Open3D uint16
depth with depth_scale 1000, ssr_ros float32 metres) and the same depth cut-off. The first
frame of each run is a warm-up and is not timed.

The 20-class runs use synthetic label images (no real per-frame labels are available in
../shared/data): ids 1..20 in a fixed pattern of 80x60-pixel tiles, and for the
probability runs a (H, W, 21) softmax with 0.8 on that id.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssr_ros.geometry import CameraIntrinsics, Frame  # noqa: E402
from ssr_ros.map import SemanticTSDF, TSDFConfig  # noqa: E402
from ssr_ros.map import native  # noqa: E402


def shared_data() -> Path:
    return Path(os.environ.get("SSR_SHARED_DIR", REPO.parent / "shared")) / "data"


def read_image(path: Path) -> np.ndarray:
    import open3d as o3d

    return np.asarray(o3d.io.read_image(str(path)))


def load_sequence(name: str, count: int):
    data = shared_data()
    if name == "7scenes":
        folder = data / "7scenes_tsdf_fusion" / "data"
        K = np.loadtxt(folder / "camera-intrinsics.txt")
        stems = [folder / f"frame-{i:06d}" for i in range(count)]
        color_ext = ".color.jpg"
    elif name == "shelf":
        folder = data / "princeton_shelf_tsdf_fusion" / "old-version" / "data" / "sample"
        K = np.loadtxt(folder / "intrinsics.K.txt")
        stems = sorted({p.name.split(".")[0] for p in folder.glob("frame-*.depth.png")})[:count]
        stems = [folder / s for s in stems]
        color_ext = ".color.png"
    else:
        raise SystemExit(f"unknown sequence {name!r}")
    frames = []
    for stem in stems:
        depth_mm = read_image(Path(str(stem) + ".depth.png"))
        color = read_image(Path(str(stem) + color_ext))[..., :3].copy()
        pose = np.loadtxt(str(stem) + ".pose.txt")
        u, _, vt = np.linalg.svd(pose[:3, :3])  # stored with ~7 digits: re-orthonormalise
        pose[:3, :3] = u @ vt
        frames.append((depth_mm, color, pose))
    h, w = frames[0][0].shape
    intrinsics = CameraIntrinsics.from_matrix(K, w, h)
    return intrinsics, frames


def synthetic_labels(shape, num_classes=21) -> np.ndarray:
    v, u = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return (1 + ((u // 80) + 8 * (v // 60)) % (num_classes - 1)).astype(np.int64)


def bench_open3d(intrinsics, frames, voxel_size, trunc_voxels, max_depth):
    import open3d as o3d
    import open3d.core as o3c

    vbg = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"), attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
        attr_channels=((1), (1), (3)), voxel_size=voxel_size, block_resolution=8, block_count=50000,
    )
    K = o3c.Tensor(intrinsics.matrix, o3c.float64)
    images = [(o3d.t.geometry.Image(np.ascontiguousarray(d)), o3d.t.geometry.Image(np.ascontiguousarray(c)),
               o3c.Tensor(np.linalg.inv(p), o3c.float64)) for d, c, p in frames]

    def step(depth, color, extrinsic):
        coords = vbg.compute_unique_block_coordinates(depth, K, extrinsic, 1000.0, max_depth, trunc_voxels)
        vbg.integrate(coords, depth, color, K, K, extrinsic, 1000.0, max_depth, trunc_voxels)

    step(*images[0])
    start = time.perf_counter()
    for item in images[1:]:
        step(*item)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    mesh = vbg.extract_triangle_mesh()
    mesh_time = time.perf_counter() - start
    return {
        "fps": (len(images) - 1) / elapsed,
        "blocks": int(vbg.hashmap().size()),
        "bytes_per_voxel": 4 + 4 + 12,
        "mesh_s": mesh_time,
        "triangles": int(mesh.triangle.indices.shape[0]),
    }


def bench_ssr(intrinsics, frames, voxel_size, trunc_voxels, max_depth, semantics=None, backend="auto", carving=True, limit=None):
    config = TSDFConfig(
        voxel_size=voxel_size, truncation_voxels=trunc_voxels, max_depth=max_depth, min_depth=0.05,
        backend=backend, space_carving=carving,
    )
    tsdf_map = SemanticTSDF(config, num_classes=21, device="cpu")
    shape = frames[0][0].shape
    labels = probs = None
    if semantics == "labels":
        labels = synthetic_labels(shape)
    elif semantics == "probs":
        probs = np.full(shape + (21,), 0.01, np.float32)
        np.put_along_axis(probs, synthetic_labels(shape)[..., None], 0.8, axis=-1)
    items = [
        Frame((d.astype(np.float32) / 1000.0), intrinsics, p, rgb=c, labels=labels, label_probs=probs)
        for d, c, p in frames[:limit]
    ]
    tsdf_map.integrate(items[0])
    start = time.perf_counter()
    for frame in items[1:]:
        tsdf_map.integrate(frame)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    update = tsdf_map.update_mesh()
    mesh_time = time.perf_counter() - start
    tsdf_map.integrate(items[-1])
    start = time.perf_counter()
    incremental = tsdf_map.update_mesh()
    incremental_time = time.perf_counter() - start
    return {
        "fps": (len(items) - 1) / elapsed,
        "blocks": tsdf_map.num_blocks,
        "bytes_per_voxel": tsdf_map.bytes_per_voxel(),
        "mesh_s": mesh_time,
        "triangles": sum(m.num_triangles for m in update.blocks.values()),
        "incremental_mesh_s": incremental_time,
        "incremental_blocks": len(incremental.blocks),
        "backend": tsdf_map.backend,
        "frames": len(items),
    }


def median_run(results: list[dict]) -> dict:
    """The run with the median fps (the lower middle one for an even count), with all fps."""
    ordered = sorted(results, key=lambda r: r["fps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["all_fps"] = [r["fps"] for r in results]
    return chosen


def machine() -> str:
    import open3d as o3d

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()}-core {platform.machine()} CPU ({cpu}), no GPU; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Open3D {o3d.__version__} CPU, Python {platform.python_version()}"
    )


def run_child(args) -> None:
    """Run every configuration in this process and print the results as JSON."""
    import json

    native.load()
    rows = []
    for sequence in args.sequences:
        intrinsics, frames = load_sequence(sequence, args.frames)
        max_depth = 4.0 if sequence == "7scenes" else 2.0
        for voxel in args.voxel_sizes:
            common = (intrinsics, frames, voxel, args.trunc_voxels, max_depth)
            configs = {
                "depth+color": dict(),
                "depth+color, no carving": dict(carving=False),
                "depth+color, torch kernel": dict(backend="torch", limit=20),
                "+ 20-class labels": dict(semantics="labels"),
                "+ 21-class probabilities": dict(semantics="probs"),
            }
            # the CPU is shared: run Open3D and the ssr_ros depth+color configurations in turn,
            # --repeat times, and keep the run with the median fps of each
            o3d_runs, ssr_runs = [], {name: [] for name in configs}
            for repeat in range(args.repeat):
                o3d_runs.append(bench_open3d(intrinsics, frames, voxel, args.trunc_voxels, max_depth))
                for name, kwargs in configs.items():
                    if repeat == 0 or name.startswith("depth+color") and "torch" not in name:
                        ssr_runs[name].append(bench_ssr(*common, **kwargs))
            o3d_result = median_run(o3d_runs)
            runs = {name: median_run(results) for name, results in ssr_runs.items()}
            rows.append({"sequence": sequence, "frames": len(frames), "voxel": voxel, "open3d": o3d_result, "runs": runs})
            print(f"[{torch.get_num_threads()} threads] {sequence} {voxel} m: open3d {o3d_result['fps']:.1f} fps | "
                  + " | ".join(f"{k} {v['fps']:.1f}" for k, v in runs.items()), file=sys.stderr, flush=True)
    print(json.dumps({"threads": torch.get_num_threads(), "machine": machine(), "rows": rows}))


def main() -> None:
    import json
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames per sequence (7-Scenes has 500, shelf 50)")
    parser.add_argument("--voxel-sizes", type=float, nargs="+", default=[0.05, 0.02])
    parser.add_argument("--trunc-voxels", type=float, default=4.0)
    parser.add_argument("--sequences", nargs="+", default=["7scenes", "shelf"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of Open3D and of the depth+color configurations per row (median reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="OpenMP / torch thread counts to run (each in a fresh process, for both libraries)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not shared_data().is_dir():
        raise SystemExit(f"no data at {shared_data()}; set SSR_SHARED_DIR")
    if args.child:
        run_child(args)
        return
    native.load()  # build the kernel once, outside the timed children
    load_before = os.getloadavg()[0]
    results = []
    for threads in args.threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), SSR_SHARED_DIR=str(shared_data().parent))
        command = [sys.executable, __file__, "--child", "--frames", str(args.frames), "--trunc-voxels", str(args.trunc_voxels),
                   "--repeat", str(args.repeat),
                   "--voxel-sizes", *map(str, args.voxel_sizes), "--sequences", *args.sequences]
        out = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    load_after = os.getloadavg()[0]
    write_results(args, results, load_before, load_after)


def all_fps(result: dict) -> str:
    return " / ".join(f"{fps:.0f}" for fps in result.get("all_fps", [result["fps"]]))


def write_results(args, results, load_before, load_after) -> None:
    lines = [
        "# Integration benchmark: ssr_ros SemanticTSDF vs Open3D VoxelBlockGrid",
        "",
        f"Machine: {re.sub(r' [(][0-9]+ threads[)]', '', results[0]['machine'])}.",
        f"Command: `SSR_SHARED_DIR=/path/to/shared python benchmarks/bench_integration.py` "
        f"(--frames {args.frames} --repeat {args.repeat}; each thread count runs in a fresh process with OMP_NUM_THREADS set, "
        "for both libraries).",
        f"Truncation {args.trunc_voxels:g} voxels, blocks of 8^3 voxels, depth cut-off 4 m (7-Scenes) / 2 m (shelf).",
        f"Load average before / after: {load_before:.2f} / {load_after:.2f}. The 2-core CPU is shared with other jobs:",
        "repeated runs differ by 10-30 %, so Open3D and the ssr_ros depth+color runs take turns, each "
        f"{args.repeat} times, and the run with the median fps is reported ('runs' lists every fps);",
        "the semantic and torch-kernel rows run once. Compare the two libraries within one row group.",
        "",
        "fps = frames integrated per second, first frame not timed. Open3D integrates depth + color",
        "(float32 TSDF, weight, RGB: 20 B/voxel). ssr_ros stores 15 B/voxel (float16 TSDF and weight,",
        "uint8 RGB, top-2 class evidence) + 48 B per block; 'B/voxel' is memory_bytes() / allocated voxels.",
        "'mesh s' is a full marching-cubes extraction of the final map; 'incr.' re-meshes after one more",
        "frame (the changed blocks and their lower neighbours only). The torch-kernel row runs 20 frames.",
        "",
        "| threads | sequence | frames | voxel | run | fps | vs Open3D | runs (fps) | blocks | B/voxel | mesh s | incr. mesh s (blocks) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        threads = result["threads"]
        for row in result["rows"]:
            o3d_result = row["open3d"]
            prefix = f"| {threads} | {row['sequence']} | {row['frames']} | {row['voxel']:g} m"
            lines.append(
                f"{prefix} | Open3D VoxelBlockGrid | {o3d_result['fps']:.1f} | 1.00 | {all_fps(o3d_result)} | {o3d_result['blocks']} | "
                f"{o3d_result['bytes_per_voxel']} | {o3d_result['mesh_s']:.3f} | - |"
            )
            for name, r in row["runs"].items():
                lines.append(
                    f"{prefix} | ssr_ros {name} ({r['backend']}) | {r['fps']:.1f} | "
                    f"{r['fps'] / o3d_result['fps']:.2f} | {all_fps(r)} | {r['blocks']} | {r['bytes_per_voxel']:.2f} | "
                    f"{r['mesh_s']:.3f} | {r['incremental_mesh_s']:.3f} ({r['incremental_blocks']}) |"
                )
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
