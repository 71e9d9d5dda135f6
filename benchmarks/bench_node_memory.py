"""Where the mapper's memory goes, in process: the node's work without ROS, broken down by owner.

    PYTHONPATH=. python benchmarks/bench_node_memory.py [--frames 1000] [--floor default] [--arena-max 0] \
        [--release-every 0] [--tracemalloc]

Runs :class:`~ssr_ros.pipeline.MappingPipeline` (completion as configured by default) on the
cached frames of the soak benchmark (``bench_soak.py``: the floor tour, 320x240), with the
node's periodic work on a pool of 4 threads as the node's executor runs it (mesh update every
10 frames, full mesh every 100, voxel outputs and planning every 50, completion every 20 frames
on a thread of its own), and prints at the end:

- the kernel's view (RSS, anonymous / file-backed) and malloc's (in use, free but held, arenas);
- the owners it can name: the map (its own ``memory_bytes``), the incremental mesher's per-block
  meshes, the completion model, torch tensors alive (found by the garbage collector), and with
  ``--tracemalloc`` what Python and NumPy hold, by file;
- what is left: libraries (the RSS right after import) and free-but-held heap.

``--arena-max`` sets glibc's arena limit first (0: glibc's default), ``--release-every N`` gives free
heap back to the kernel every N frames (``malloc_trim``), to measure the node's settings
(``malloc_arena_max``, ``heap_release_period_s``) before and after.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ssr_ros.process_memory import limit_malloc_arenas, process_memory, release_free_heap  # noqa: E402


def tensor_bytes() -> int:
    """Bytes of the distinct storages of every torch tensor the garbage collector can see."""
    import torch

    seen, total = set(), 0
    with warnings.catch_warnings():  # isinstance() on deprecated torch objects warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor) and obj.device.type == "cpu":
                    storage = obj.untyped_storage()
                    key = storage.data_ptr()
                    if key and key not in seen:
                        seen.add(key)
                        total += storage.nbytes()
            except Exception:  # noqa: BLE001 - objects that fail isinstance/storage checks are skipped
                continue
    return total


def mesher_bytes(pipeline) -> int:
    """Bytes of the incremental mesher's per-block meshes (kept between updates)."""
    import numpy as np

    total = 0
    for mesh in pipeline.map.block_meshes():
        for value in vars(mesh).values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
    return total


class Messages:
    """The node's output messages built from the pipeline's outputs (``--messages``), the latest of
    each kind kept, as a latched (transient-local) publisher's history keeps it."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.latest: dict = {}

    def mesh(self, update) -> None:
        from ssr_ros.ros.conversions.marker import mesh_to_part_markers, part_count
        from ssr_ros.ros.conversions.semantic_mesh import MeshUpdateArrays, update_to_msg
        from ssr_ros.ros.map_outputs import mesh_blocks_to_arrays

        blocks = list(update.blocks.values()) if hasattr(update, "blocks") else list(update)
        arrays = MeshUpdateArrays(self.pipeline.block_extent, mesh_blocks_to_arrays(blocks))
        self.latest["mesh"] = update_to_msg(arrays, "map", 0)
        markers = []
        for block in blocks:
            if len(block.triangles):
                ids = list(range(part_count(len(block.triangles), 65536)))
                markers += mesh_to_part_markers(block.vertices, block.triangles, block.colors, "map", 0, "m", ids, 65536)
        self.latest["markers"] = markers

    def voxels(self) -> None:
        from ssr_ros.ros.conversions.point_cloud import semantic_cloud_to_msg
        from ssr_ros.ros.conversions.semantic_map import boxes_to_map_msg
        from ssr_ros.ros.map_outputs import voxel_blocks_to_boxes

        voxels, (coords, layers) = self.pipeline.voxel_outputs()
        tsdf_map = self.pipeline.map
        self.latest["cloud"] = semantic_cloud_to_msg(voxels["points"], voxels["colors"], voxels["labels"],
                                                     voxels["confidence"], voxels["observed"], "map", 0)
        self.latest["voxel_map"] = boxes_to_map_msg(
            voxel_blocks_to_boxes(coords, layers, tsdf_map.voxel_size, tsdf_map.block_size), tsdf_map.voxel_size,
            tsdf_map.truncation, self.pipeline.taxonomy, "map", 0)

    def planning(self) -> None:
        from ssr_ros.ros.conversions.distance_cloud import field_to_msg
        from ssr_ros.ros.conversions.occupancy import occupancy_to_msg

        outputs = self.pipeline.planning_outputs(with_3d=False)
        self.latest["occupancy"] = occupancy_to_msg(outputs.occupancy, "map", 0)
        self.latest["cost"] = occupancy_to_msg(outputs.cost, "map", 0)
        self.latest["esdf_slice"] = field_to_msg(outputs.esdf_2d, "map", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--unique", type=int, default=1000, help="the soak's cached frames to replay")
    parser.add_argument("--floor", choices=["default", "large"], default="default")
    parser.add_argument("--arena-max", type=int, default=0)
    parser.add_argument("--release-every", type=int, default=0)
    parser.add_argument("--budget-mb", type=float, default=0.0)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--messages", action="store_true", help="also build the node's output messages (ROS message types)")
    args = parser.parse_args()
    limit_malloc_arenas(args.arena_max)
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(1)

    import torch

    import bench_soak
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    torch.set_num_threads(1)  # as the node (map.threads)
    after_import = process_memory()
    stack = bench_soak.render_frames(args.unique, 320, 240, 10.0, floor=args.floor)
    config = PipelineConfig()
    config.map.memory_budget_mb = args.budget_mb
    pipeline = MappingPipeline(config)
    frames_bytes = stack.nbytes
    pool = ThreadPoolExecutor(4, thread_name_prefix="outputs")  # the executor's threads
    completer = ThreadPoolExecutor(1, thread_name_prefix="completion")
    pending = []
    messages = Messages(pipeline) if args.messages else None
    mesh = (lambda: messages.mesh(pipeline.mesh_update())) if messages else pipeline.mesh_update
    full_mesh = (lambda: messages.mesh(pipeline.block_meshes())) if messages else pipeline.block_meshes
    voxels = messages.voxels if messages else pipeline.voxel_outputs
    planning = messages.planning if messages else (lambda: pipeline.planning_outputs(False))
    start = time.perf_counter()
    for k in range(args.frames):
        pipeline.integrate(stack.frame(k % len(stack)))
        if k % 10 == 9:
            pending.append(pool.submit(mesh))
        if k % 100 == 99:
            pending.append(pool.submit(full_mesh))
        if k % 50 == 49:
            pending.append(pool.submit(voxels))
            pending.append(pool.submit(planning))
        if k % 20 == 19 and pipeline.completion_enabled:
            pending.append(completer.submit(pipeline.complete, pipeline.last_camera_position))
        if args.release_every and k % args.release_every == args.release_every - 1:
            release_free_heap()
        if k % 250 == 249:
            for future in pending:
                future.result()
            pending.clear()
            memory = process_memory()
            print(f"frame {k + 1}: RSS {memory['rss'] / 1e6:.0f} MB, malloc in use {memory['heap_in_use'] / 1e6:.0f}, "
                  f"free held {memory['heap_free_held'] / 1e6:.0f} in {memory.get('malloc_arenas')} arenas, "
                  f"map {pipeline.stats()['map_bytes'] / 1e6:.0f} MB ({time.perf_counter() - start:.0f} s)", flush=True)
    for future in pending:
        future.result()
    stats = pipeline.stats()
    memory = process_memory()
    print(f"\nafter import: RSS {after_import['rss'] / 1e6:.0f} MB (file-backed {after_import['rss_file'] / 1e6:.0f})")
    print(f"end: RSS {memory['rss'] / 1e6:.0f} MB = anonymous {memory['rss_anonymous'] / 1e6:.0f} + file-backed "
          f"{memory['rss_file'] / 1e6:.0f}; malloc in use {memory['heap_in_use'] / 1e6:.0f} (mmapped "
          f"{memory['heap_mmapped'] / 1e6:.0f}), free held {memory['heap_free_held'] / 1e6:.0f} in "
          f"{memory.get('malloc_arenas')} arenas")
    print(f"owners: map {stats['map_bytes'] / 1e6:.0f} MB ({stats['num_blocks']} blocks); mesher's block meshes "
          f"{mesher_bytes(pipeline) / 1e6:.0f} MB ({len(pipeline.map.block_meshes())}); completion model "
          f"{stats['completion_model_bytes'] / 1e6:.1f} MB; torch tensors alive {tensor_bytes() / 1e6:.0f} MB; "
          f"the script's frames {frames_bytes / 1e6:.0f} MB")
    if args.tracemalloc:
        import tracemalloc

        current, peak = tracemalloc.get_traced_memory()
        print(f"tracemalloc (Python + NumPy): current {current / 1e6:.0f} MB, peak {peak / 1e6:.0f} MB; by file:")
        for stat in tracemalloc.take_snapshot().statistics("filename")[:12]:
            print(f"  {stat.size / 1e6:8.1f} MB  {stat.traceback[0].filename}")
    released = release_free_heap()
    after = process_memory()
    print(f"after malloc_trim ({released}): RSS {after['rss'] / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
