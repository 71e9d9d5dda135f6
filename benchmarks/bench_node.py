"""Mapper node throughput and end-to-end latency over real DDS, fusion only and with completion.

    python benchmarks/bench_node.py [--frames 60] [--width 320 --height 240] [--weights W.pt]

A generated room's frames are published to the node (a separate process) from this process:
once as fast as the node takes them (sustained frames/s = frames integrated / time between the
first and the last ``~/integrated`` message), once at the camera rate (latency = arrival of a
frame's ``~/integrated`` header minus the time its images were published). With completion the
network runs every ``scheduler.period_s`` in the node's completion thread; without default
weights an untrained network of the default size is used (only its cost matters here).
Appends a section to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def run_case(name, parameters, frames, rate_hz):
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS
    from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info
    from ssr_ros.ros.conversions.image import numpy_to_image
    from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped
    from ssr_ros.ros.conversions.time import stamp_to_ns
    from ssr_ros.ros.mapper_client import MapperProcess

    mapper = MapperProcess(None, parameters, client_name=f"bench_{name}")
    arrivals: dict[int, float] = {}
    mapper.node.create_subscription(Header, "/ssr_mapper/integrated",
                                    lambda h: arrivals.setdefault(stamp_to_ns(h.stamp), time.perf_counter()), 100)
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {key: mapper.node.create_publisher(t, topic, qos) for key, t, topic in [
        ("info", CameraInfo, DEFAULT_TOPICS.camera_info), ("pose", PoseStamped, DEFAULT_TOPICS.pose),
        ("depth", Image, DEFAULT_TOPICS.depth), ("color", Image, DEFAULT_TOPICS.color), ("labels", Image, DEFAULT_TOPICS.labels)]}
    try:
        mapper.wait_ready()
        mapper.wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), "subscriptions")
        results = {}
        for mode, period in (("max", 0.0), ("camera", 1.0 / rate_hz)):
            arrivals.clear()
            published = {}
            offset = 0 if mode == "max" else 10 ** 12
            start = time.perf_counter()
            for k, frame in enumerate(frames):
                stamp = frame.stamp_ns + offset
                due = start + k * period
                while time.perf_counter() < due:
                    time.sleep(0.0005)
                pubs["info"].publish(intrinsics_to_camera_info(frame.intrinsics, stamp, "cam"))
                pubs["pose"].publish(matrix_to_pose_stamped(frame.T_world_cam, "map", stamp))
                pubs["color"].publish(numpy_to_image(frame.rgb, "rgb8", stamp, "cam"))
                pubs["labels"].publish(numpy_to_image(frame.labels.astype(np.uint8), "mono8", stamp, "cam"))
                pubs["depth"].publish(numpy_to_image(np.round(frame.depth * 1000).astype(np.uint16), "16UC1", stamp, "cam"))
                published[stamp] = time.perf_counter()
            mapper.wait_for(lambda: len(arrivals) >= len(frames), f"{len(frames)} integrated frames", timeout=900)
            times = sorted(arrivals.values())
            latency = np.array([arrivals[s] - published[s] for s in published if s in arrivals]) * 1e3
            results[mode] = {
                "fps": (len(times) - 1) / (times[-1] - times[0]),
                "latency_ms_median": float(np.median(latency)), "latency_ms_p95": float(np.percentile(latency, 95)),
            }
            if mode == "max":
                mapper.call(__import__("ssr_ros.srv", fromlist=["ResetMap"]).ResetMap, "reset_map",
                            __import__("ssr_ros.srv", fromlist=["ResetMap"]).ResetMap.Request())
        mapper.wait_idle()
        results["diagnostics"] = dict(mapper.diagnostics)
        return results
    finally:
        mapper.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--rate", type=float, default=15.0, help="camera rate for the latency run, Hz")
    parser.add_argument("--weights", default="", help="completion weights (default: packaged, else untrained)")
    parser.add_argument("--results", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args()

    import rclpy
    import torch

    from ssr_ros.completion.weights import default_weights_path
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, generate_scene

    scene = generate_scene(seed=3)
    config = SequenceConfig(width=args.width, height=args.height)
    config.trajectory.num_frames = args.frames
    frames = list(SyntheticSequence(scene, config))
    weights, weights_note = args.weights, ""
    if not weights:
        if Path(default_weights_path()).exists():
            weights, weights_note = str(default_weights_path()), "packaged default weights"
        else:
            from ssr_ros.completion.network import build_ssr_unet, preset_config
            from ssr_ros.completion.weights import save_model

            weights = str(save_model(build_ssr_unet(preset_config("small")), Path(tempfile.mkdtemp()) / "untrained.pt"))
            weights_note = "untrained network of the 'small' preset (no packaged weights)"
    common = {"sensor_qos": "reliable", "frame_queue_size": 10000, "sync_queue_size": 1000, "pose_wait_s": 5.0,
              "device": "cpu", "completion.device": "cpu", "warn_throttle_s": 5.0}
    from ssr_ros.ros.dds_transport import apply_transport_profile

    print(apply_transport_profile(), flush=True)
    rclpy.init()
    cases = {
        "fusion only": run_case("fusion", {**common, "completion.type": "none"}, frames, args.rate),
        "fusion + completion": run_case("completion", {**common, "completion.weights": weights, "scheduler.period_s": 2.0},
                                        frames, args.rate),
    }
    rclpy.try_shutdown()
    load = os.getloadavg()[0]
    lines = [
        "", "## Mapper node over DDS: sustained throughput and end-to-end latency", "",
        f"Machine: {os.cpu_count()}-core {platform.machine()} CPU ({platform.processor() or 'x86_64'}), no GPU; torch "
        f"{torch.__version__}; load average {load:.1f} when the run ended.",
        f"Command: `python benchmarks/bench_node.py --frames {args.frames} --width {args.width} --height {args.height}` "
        f"(generated kitchen, seed 3; node in its own process; Fast DDS on loopback; completion: {weights_note or weights}).",
        "Throughput: frames published as fast as possible, frames/s between the first and the last integrated frame. "
        f"Latency: publish of a frame's images to its `~/integrated` header, at {args.rate:g} Hz.", "",
        "| case | sustained frames/s | latency median ms | latency p95 ms | at camera rate: frames/s | node integrate mean ms | completion runs (mean ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in cases.items():
        d = r["diagnostics"]
        lines.append(
            f"| {name} | {r['max']['fps']:.1f} | {r['camera']['latency_ms_median']:.1f} | {r['camera']['latency_ms_p95']:.1f} | "
            f"{r['camera']['fps']:.1f} | {float(d.get('integrate_mean_ms', 'nan')):.1f} | "
            f"{d.get('complete_count', '0')} ({float(d.get('complete_mean_ms', 'nan')):.0f}) |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.results, "a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
