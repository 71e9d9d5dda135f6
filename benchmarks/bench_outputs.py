"""CPU time of each stage of the mapper node's outputs, per second of 30 Hz input.

    python benchmarks/bench_outputs.py [--frames 100] [--batch 30] [--width 640 --height 480] [--profile]

Fuses the floor-tour frames of ``bench_lock_hold`` (640x480, cached in the temporary directory)
into a ``MappingPipeline`` at the default parameters (completion.type none) and, after each batch
of ``--batch`` frames (1 s at 30 Hz, the node's ``mesh_period_s``), runs what the node runs with
every output subscribed, stage by stage, timing each stage's CPU:

- ``mesh_update``: copy of the changed blocks, grid gather, marching cubes, vertex attributes;
- ``SemanticMesh build`` / ``serialise``: the ``~/mesh`` message of the changed blocks and its CDR;
- ``markers build`` / ``serialise``: RViz's TRIANGLE_LIST markers of the changed blocks (the node's
  own ``_block_markers``) and their CDR;
- every ``full_mesh_period_s`` (10 s): the full SemanticMesh (every block, clear_all);
- every ``voxel_period_s`` (5 s): ``voxel_outputs`` and the voxel cloud / voxel map messages, and
  ``planning_outputs`` (occupancy grid and distance slices).

Per-second figures weigh each stage by how often the node runs it (1 s, 10 s, 5 s). Run the same
command with ``PYTHONPATH`` at another checkout to compare code. ``--profile`` prints cProfile's
top functions of the mesh stages.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def cpu_ms(fn):
    start = time.process_time()
    value = fn()
    return value, 1e3 * (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--label", default="")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from bench_lock_hold import load_frames
    from rclpy.serialization import serialize_message

    import ssr_ros
    from ssr_ros.config import config_from_dict, nest_dotted
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig
    from ssr_ros.ros.conversions.point_cloud import semantic_cloud_to_msg
    from ssr_ros.ros.conversions.semantic_map import boxes_to_map_msg
    from ssr_ros.ros.conversions.semantic_mesh import MeshUpdateArrays, update_to_msg
    from ssr_ros.ros.map_outputs import mesh_blocks_to_arrays, voxel_blocks_to_boxes
    from ssr_ros.ros.mapper_node import MapperNode

    try:
        from ssr_ros.ros.conversions.semantic_map_cdr import voxel_map_cdr
        from ssr_ros.ros.conversions.semantic_mesh_cdr import mesh_update_cdr
    except ImportError:  # code before the serialised messages
        voxel_map_cdr = mesh_update_cdr = None
    from ssr_ros.ros.node_config import NodeConfig

    stack = load_frames(args.frames, args.width, args.height)
    pipeline = MappingPipeline(config_from_dict(PipelineConfig, nest_dotted({"completion.type": "none"})))
    # the node's marker builder on a stand-in node (its state: marker ids per block)
    node = types.SimpleNamespace(settings=NodeConfig(), pipeline=pipeline, _marker_ids={}, _next_marker_id=0)
    node._to_map_frame = types.MethodType(MapperNode._to_map_frame, node)
    block_markers = types.MethodType(MapperNode._block_markers, node)

    def serialise_markers(markers):
        if isinstance(markers, list):  # records, serialised without generated messages
            from ssr_ros.ros.conversions.marker_cdr import marker_array_cdr

            return marker_array_cdr(markers)
        return serialize_message(markers)

    rows: dict[str, list[float]] = {}
    profile = cProfile.Profile() if args.profile else None

    def add(name, ms):
        rows.setdefault(name, []).append(ms)

    def mesh_stages(full_markers: bool):
        if profile:
            profile.enable()
        update, ms = cpu_ms(pipeline.mesh_update)
        add("mesh_update", ms)
        changed = list(update.blocks.values())
        if mesh_update_cdr is None:
            msg, ms = cpu_ms(lambda: update_to_msg(MeshUpdateArrays(pipeline.block_extent, mesh_blocks_to_arrays(changed),
                                                                    update.vanished), "map", 0))
            add("SemanticMesh build (changed)", ms)
            add("SemanticMesh serialise (changed)", cpu_ms(lambda: serialize_message(msg))[1])
        else:  # written serialised
            add("SemanticMesh build (changed)", cpu_ms(lambda: mesh_update_cdr(changed, pipeline.block_extent, "map", 0,
                                                                               update.vanished))[1])
            add("SemanticMesh serialise (changed)", 0.0)
        markers, ms = cpu_ms(lambda: block_markers(changed, update.vanished, full_markers, 0))
        add("markers build (changed)", ms)
        add("markers serialise (changed)", cpu_ms(lambda: serialise_markers(markers))[1])
        if profile:
            profile.disable()
        add("changed blocks", len(changed))
        add("changed vertices", sum(b.num_vertices for b in changed))

    batches = 0
    for i in range(len(stack)):
        pipeline.integrate(stack.frame(i))
        if (i + 1) % args.batch == 0:
            mesh_stages(full_markers=batches == 0)
            batches += 1
    blocks, ms = cpu_ms(pipeline.block_meshes)
    if mesh_update_cdr is None:
        full, ms2 = cpu_ms(lambda: update_to_msg(MeshUpdateArrays(pipeline.block_extent, mesh_blocks_to_arrays(blocks),
                                                                  clear_all=True), "map", 0))
        add("full SemanticMesh build (every 10 s)", ms + ms2)
        add("full SemanticMesh serialise (every 10 s)", cpu_ms(lambda: serialize_message(full))[1])
    else:
        ms2 = cpu_ms(lambda: mesh_update_cdr(blocks, pipeline.block_extent, "map", 0, clear_all=True))[1]
        add("full SemanticMesh build (every 10 s)", ms + ms2)
        add("full SemanticMesh serialise (every 10 s)", 0.0)
    for _ in range(2):
        (voxels, (coords, layers)), ms = cpu_ms(pipeline.voxel_outputs)
        add("voxel_outputs (every 5 s)", ms)
        cloud, ms = cpu_ms(lambda: semantic_cloud_to_msg(voxels["points"], voxels["colors"], voxels["labels"],
                                                          voxels["confidence"], voxels["observed"], "map", 0))
        add("voxel cloud msg (every 5 s)", ms)
        if voxel_map_cdr is None:
            vmap, ms = cpu_ms(lambda: boxes_to_map_msg(
                voxel_blocks_to_boxes(coords, layers, pipeline.map.voxel_size, pipeline.map.block_size),
                pipeline.map.voxel_size, pipeline.map.truncation, pipeline.taxonomy, "map", 0))
            vmap_bytes, ms2 = cpu_ms(lambda: serialize_message(vmap))
        else:  # written serialised in one pass
            vmap_bytes, ms = cpu_ms(lambda: voxel_map_cdr(coords, layers, pipeline.map.voxel_size, pipeline.map.block_size,
                                                          pipeline.map.truncation, pipeline.taxonomy, "map", 0))
            ms2 = 0.0
        add("voxel map msg (every 5 s)", ms)
        add("voxel msgs serialise (every 5 s)", cpu_ms(lambda: serialize_message(cloud))[1] + ms2)

    for _ in range(2):  # occupancy and the distance slices (unchanged here; for the whole picture)
        add("planning_outputs (every 5 s)", cpu_ms(lambda: pipeline.planning_outputs(with_3d=False))[1])

    stats = pipeline.stats()
    print(f"code: {Path(ssr_ros.__file__).parent.parent}; load average {os.getloadavg()[0]:.1f}; map "
          f"{stats['map_bytes'] / 1e6:.0f} MB, {stats['num_blocks']} blocks after {len(stack)} frames of "
          f"{args.width}x{args.height}; {batches} batches of {args.batch} frames")
    print("| run | stage | CPU ms per call (median) | CPU ms per second of input |")
    print("|---|---|---|---|")
    total = 0.0
    for name, values in rows.items():
        median = float(np.median(values[1:] if len(values) > 2 else values))  # the first batch meshes everything
        if name.startswith("changed"):
            print(f"| {args.label} | {name} (median) | {median:.0f} | |")
            continue
        per_s = median / (10.0 if "10 s" in name else 5.0 if "5 s" in name else args.batch / 30.0)
        total += per_s
        print(f"| {args.label} | {name} | {median:.1f} | {per_s:.1f} |")
    print(f"| {args.label} | **all outputs** | | **{total:.0f}** |")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
