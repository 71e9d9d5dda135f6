"""``ssr demo``: a generated room replayed into the mapping node over real DDS, end to end.

1. generate a furnished room (seeded) and a handheld RGB-D sequence with 2D pseudo-labels,
   and write it as a rosbag2 file;
2. start the ``ssr_mapper`` node as its own process and replay the bag into it through rclpy;
3. when every frame is integrated, complete the map and save it through the node's services
   (map, mesh.ply, mesh_semantic.ply, voxels.ply);
4. render PNG previews of the saved map (fused color, classes, observed vs predicted) and score
   it against the scene's exact ground truth, the mesh both with completion and without it
   (fusion only: the same map's mesh without its predicted voxels), so the summary says at once
   whether completion helped; write ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the end-to-end demo on a generated room",
        description="Generate a furnished room, replay it into the mapping node over real DDS, and "
        "write the completed semantic mesh, PNG previews and a summary with timings and metrics.",
    )
    parser.add_argument("--out", default="out/demo", help="output directory (default: out/demo)")
    parser.add_argument("--seed", type=int, default=3, help="scene seed (default: 3)")
    parser.add_argument("--frames", type=int, default=90, help="frames in the sequence (default: 90)")
    parser.add_argument("--width", type=int, default=320, help="image width (default: 320)")
    parser.add_argument("--height", type=int, default=240, help="image height (default: 240)")
    parser.add_argument("--rate", type=float, default=1.0, help="bag playback rate (default: 1, real time)")
    parser.add_argument("--voxel-size", type=float, default=0.05, help="map voxel size, metres (default: 0.05)")
    parser.add_argument("--no-completion", action="store_true", help="fusion only (no network)")
    parser.add_argument("--weights", default="", help="completion weights (default: the packaged model)")
    parser.set_defaults(func=run)


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run(args: argparse.Namespace) -> int:
    import rclpy
    from tqdm import tqdm

    from ssr_ros.data.rosbag_writer import write_bag
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, generate_scene
    from ssr_ros.evaluation.map_evaluation import completion_effect, evaluate_map, format_completion_effect
    from ssr_ros.evaluation.report import format_table
    from ssr_ros.map.semantic_tsdf import read_map
    from ssr_ros.preview import write_previews
    from ssr_ros.ros.bag_player import play_bag
    from ssr_ros.ros.mapper_client import MapperProcess
    from ssr_ros.srv import SaveMap
    from ssr_ros.taxonomy import ClassTaxonomy
    from std_srvs.srv import Trigger

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    scene = generate_scene(seed=args.seed)
    config = SequenceConfig(width=args.width, height=args.height)
    config.trajectory.num_frames = args.frames
    sequence = SyntheticSequence(scene, config)
    bag = out / "bag"
    if bag.exists():
        import shutil

        shutil.rmtree(bag)
    summary = scene.summary()
    _say(f"room seed {args.seed}: a {summary['room_type']} of {' x '.join(f'{v:.1f}' for v in summary['room_size'])} m "
         f"with {len(summary['objects'])} objects; {args.frames} frames at {args.width}x{args.height}")
    write_bag(tqdm(sequence, total=args.frames, desc="[demo] render + write bag", unit="frame"), bag)
    timings["generate_s"] = time.perf_counter() - start

    parameters = {
        "sensor_qos": "reliable", "frame_queue_size": 1000, "sync_queue_size": 200, "pose_wait_s": 5.0,
        "map.voxel_size": args.voxel_size, "scheduler.period_s": 2.0, "warn_throttle_s": 2.0,
    }
    if args.no_completion:
        parameters["completion.type"] = "none"
    if args.weights:
        parameters["completion.weights"] = str(Path(args.weights).resolve())
    from ssr_ros.ros.dds_transport import apply_transport_profile

    apply_transport_profile()  # images of the replayed bag arrive whole (node and player alike)
    rclpy.init()
    mapper = MapperProcess(None, parameters, client_name="ssr_demo")
    try:
        mapper.wait_ready()
        _say("mapper node is up; replaying the bag over DDS")
        start = time.perf_counter()
        report = play_bag(mapper.node, bag, rate=args.rate, wait_for_subscribers_s=60, progress=True)
        depth_topic = "/camera/aligned_depth_to_color/image_raw"
        sent = report.published.get(depth_topic, 0)
        mapper.wait_for(lambda: mapper.counter("frames_integrated") + sum(
            int(v) for k, v in mapper.diagnostics.items() if k.startswith("dropped.")) >= sent,
            "every frame to be integrated", timeout=600)
        timings["replay_s"] = time.perf_counter() - start
        completed = None
        if not args.no_completion:
            response = mapper.call(Trigger, "complete", Trigger.Request(), timeout=1200)
            completed = response.message
            _say(f"completion: {response.message}")
        mapper.wait_idle()
        diagnostics = dict(mapper.diagnostics)
        response = mapper.call(SaveMap, "save_map", SaveMap.Request(path=str((out / "map").resolve()), formats=[]))
        if not response.success:
            _say(f"saving failed: {response.message}")
            return 2
        _say(response.message)
    finally:
        mapper.close()
        rclpy.try_shutdown()

    start = time.perf_counter()
    taxonomy = ClassTaxonomy.load()
    tsdf = read_map(out / "map", "cpu", taxonomy, backend="torch")  # only read: no integration kernel needed
    previews = write_previews(tsdf, taxonomy, out / "previews", method="mesh")
    timings["previews_s"] = time.perf_counter() - start
    _say(f"previews: {previews[-1]}")

    integrate_ms = float(diagnostics.get("integrate_mean_ms", "nan"))
    fps = 1000.0 / integrate_ms if integrate_ms > 0 else None
    gt_mesh = scene.gt_mesh()
    metrics = evaluate_map(tsdf, scene.gt_volume(tsdf.voxel_size), gt_mesh, taxonomy.names, fps=fps)
    effect = completion_effect(tsdf, gt_mesh)
    summary = {
        "scene_seed": args.seed, "frames_sent": sent, "frames_integrated": int(diagnostics.get("frames_integrated", 0)),
        "dropped": {k: int(v) for k, v in diagnostics.items() if k.startswith("dropped.")},
        "completion": completed, "node_timings_ms": {k: float(v) for k, v in diagnostics.items() if k.endswith("_ms")},
        "demo_timings_s": timings, "map": tsdf.stats(), "metrics": metrics, "mesh_with_and_without_completion": effect,
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and "bag" not in p.parts),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print(format_table(metrics))
    print(format_completion_effect(effect))
    _say(f"wrote {out / 'summary.json'}, the mesh in {out / 'map'} and previews in {out / 'previews'}")
    return 0
