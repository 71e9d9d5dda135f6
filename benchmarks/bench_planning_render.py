"""Time of the planner outputs and of the pictures, against the fusion of the same frames.

    PYTHONPATH=. python benchmarks/bench_planning_render.py [--stride 5] [--limit 60] [--repeat 3]

Fuses the 7-Scenes RedKitchen frames of ``$SSR_SHARED_DIR/data`` (default ``<repo>/../shared/data``)
with ``MappingPipeline`` (gravity estimated, fusion only, as ``ssr reconstruct`` does), then times
on that map: the planner outputs (floor, grids, 2D distance fields; and with the 3D fields), one
640x480 view by the Open3D ray caster and by the NumPy point splat (same mesh, same camera), and
the three preview views with their sheet. Prints one JSON object; times are medians of
``--repeat`` runs, in seconds, with the fusion time of the same run for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from ssr_ros.config import config_from_dict
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig
    from ssr_ros.preview import overview_poses, render_mesh_view, write_previews
    from ssr_ros.reconstruction import open_recording
    from ssr_ros.render import MeshRenderer, view_intrinsics

    data = Path(os.environ.get("SSR_SHARED_DIR", REPO.parent / "shared")) / "data" / "7scenes_tsdf_fusion" / "data"
    recording = open_recording(data)
    config = config_from_dict(PipelineConfig, {"completion": {"type": "none"}, "gravity": {"mode": "estimate"},
                                               "device": "cpu"})
    pipeline = MappingPipeline(config)
    start = time.perf_counter()
    frames = 0
    for frame in recording.frames(args.stride, args.limit):
        pipeline.integrate(frame)
        frames += 1
    pipeline.settle_gravity()
    fusion_s = time.perf_counter() - start
    tsdf = pipeline.map
    mesh = tsdf.mesh()
    K = view_intrinsics(640, 480)
    T = overview_poses(tsdf, 1)[0]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "frames": frames, "blocks": tsdf.num_blocks, "triangles": int(len(mesh.triangles)),
        "fusion_s": round(fusion_s, 2),
        "planning_2d_s": median_time(lambda: pipeline.planning_outputs(with_3d=False), args.repeat),
        "planning_with_3d_s": median_time(lambda: pipeline.planning_outputs(with_3d=True), args.repeat),
    }
    for method in ("raycast", "splat"):
        renderer = MeshRenderer(mesh.vertices, mesh.triangles, method)
        result[f"view_{method}_s"] = median_time(
            lambda r=renderer: render_mesh_view(mesh, pipeline.taxonomy, K, T, r), args.repeat)
    with tempfile.TemporaryDirectory() as out:
        result["previews_s"] = median_time(lambda: write_previews(tsdf, pipeline.taxonomy, out, method="mesh"),
                                           args.repeat)
    result["previews_vs_fusion"] = round(result["previews_s"] / fusion_s, 3)
    outputs = pipeline.planning_outputs(with_3d=False)
    result["floor"] = outputs.floor.to_dict()
    result["occupancy"] = outputs.summary()["occupancy"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=1))


if __name__ == "__main__":
    main()
