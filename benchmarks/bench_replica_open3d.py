"""ssr_ros's offline pipeline vs Open3D's VoxelBlockGrid on the Replica office0 frames, scored against the GT mesh.

Both fuse the same frames (``nvblox_testdata`` Replica office0, 1200x680, from ``../shared/data``) at the
same voxel size, truncation (4 voxels) and depth range, extract a mesh, and score it against the
Replica office0 GT mesh (same world frame as the poses): accuracy / precision against the whole GT
surface, completeness / recall / F-score against the whole surface and against the part the frames
saw (``ssr_ros.reconstruction.SurfaceVisibility``). Frames/s is integration only (best of ``--repeat``
runs over all frames, fresh map each run), on the CPU.

    python benchmarks/bench_replica_open3d.py [--voxel 0.02 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssr_ros.data.folders import ReplicaFolder  # noqa: E402
from ssr_ros.evaluation.mesh import mesh_scores, sample_surface  # noqa: E402
from ssr_ros.evaluation.report import load_mesh  # noqa: E402
from ssr_ros.map import TSDFConfig  # noqa: E402
from ssr_ros.pipeline import MappingPipeline, PipelineConfig  # noqa: E402
from ssr_ros.reconstruction import SurfaceVisibility, seen_mesh_scores  # noqa: E402

TRUNC_VOXELS = 4.0
MIN_DEPTH, MAX_DEPTH = 0.1, 5.0


def shared_dir() -> Path:
    root = Path(os.environ.get("SSR_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    return root / "data" / "nvblox_testdata" / "nvblox" / "tests" / "data" / "replica"


def run_ssr(frames, voxel):
    config = PipelineConfig(device="cpu", map=TSDFConfig(voxel_size=voxel, truncation_voxels=TRUNC_VOXELS,
                                                         min_depth=MIN_DEPTH, max_depth=MAX_DEPTH))
    config.completion.type = "none"
    pipeline = MappingPipeline(config)
    start = time.perf_counter()
    for frame in frames:
        pipeline.integrate(frame)
    elapsed = time.perf_counter() - start
    mesh = pipeline.full_mesh()
    return len(frames) / elapsed, mesh.vertices, mesh.triangles


def run_open3d(frames, voxel):
    import open3d as o3d
    import open3d.core as o3c

    vbg = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"), attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
        attr_channels=((1), (1), (3)), voxel_size=voxel, block_resolution=8, block_count=100000,
    )
    K = o3c.Tensor(frames[0].intrinsics.matrix, o3c.float64)
    images = [(o3d.t.geometry.Image(np.ascontiguousarray(f.depth.astype(np.float32))),
               o3d.t.geometry.Image(np.ascontiguousarray(f.rgb.astype(np.float32) / 255.0)),
               o3c.Tensor(np.linalg.inv(f.T_world_cam), o3c.float64)) for f in frames]
    start = time.perf_counter()
    for depth, color, extrinsic in images:
        coords = vbg.compute_unique_block_coordinates(depth, K, extrinsic, 1.0, MAX_DEPTH, TRUNC_VOXELS)
        vbg.integrate(coords, depth, color, K, K, extrinsic, 1.0, MAX_DEPTH, TRUNC_VOXELS)
    elapsed = time.perf_counter() - start
    mesh = vbg.extract_triangle_mesh().to_legacy()
    return len(frames) / elapsed, np.asarray(mesh.vertices), np.asarray(mesh.triangles)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel", type=float, nargs="+", default=[0.02, 0.05])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--threshold", type=float, default=0.05)
    args = parser.parse_args()
    replica = shared_dir()
    if not replica.is_dir():
        print(f"Replica data not found at {replica} (set SSR_SHARED_DIR)")
        return 1
    frames = list(ReplicaFolder(replica / "office0"))
    gt_vertices, gt_faces = load_mesh(replica / "office0_mesh.ply")
    gt_points = sample_surface(gt_vertices, gt_faces, args.points, seed=1)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads; "
          f"{len(frames)} Replica office0 frames {frames[0].intrinsics.width}x{frames[0].intrinsics.height}")
    print("| voxel | method | frames/s | triangles | accuracy cm | precision | recall (whole GT) | F-score (whole GT) "
          "| completeness cm (seen) | recall (seen) | F-score (seen) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for voxel in args.voxel:
        visibility = SurfaceVisibility(gt_points, max(2 * voxel, 0.05), MIN_DEPTH, MAX_DEPTH)
        for frame in frames:
            visibility.update(frame)
        for name, run in (("Open3D VoxelBlockGrid", run_open3d), ("ssr_ros MappingPipeline", run_ssr)):
            results = [run(frames, voxel) for _ in range(args.repeat)]
            fps = max(r[0] for r in results)
            vertices, faces = results[-1][1], results[-1][2]
            pred = sample_surface(vertices, faces, args.points, seed=0)
            whole = mesh_scores(pred, gt_points, args.threshold)
            seen = seen_mesh_scores(pred, gt_points, visibility.seen, args.threshold)
            print(f"| {voxel} m | {name} | {fps:.1f} | {len(faces)} | {whole.accuracy * 100:.2f} | {whole.precision:.3f} | "
                  f"{whole.recall:.3f} | {whole.fscore:.3f} | {seen.completeness * 100:.2f} | {seen.recall:.3f} | {seen.fscore:.3f} |",
                  flush=True)
        print(f"<!-- seen fraction of the GT surface at {voxel} m tolerance: {visibility.seen.mean():.3f} -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
