"""Soak and camera-rate throughput of the mapper node over DDS, at the default parameters.

    python benchmarks/bench_soak.py soak [--frames 10000] [--unique 1000] [--rate 10] [--budget-mb 200] \
        [--floor default|large] [--cases plain budget] [--param name=value ...]
    python benchmarks/bench_soak.py throughput [--width 640 --height 480] [--rates 15 30] [--frames 300]

Frames of a generated multi-room floor (``generate_floor``, 24 x 20 m, the ``tour`` trajectory
through every room and back) are published to the node (its own process; sensor-data QoS,
default queues, meshes / voxel outputs at their default rates, completion as configured) at
the camera rate from this process. ``--unique`` frames are rendered once and replayed lap after
lap with stamps going on, so a long soak revisits every room many times (rendering 10,000
distinct frames would take hours here).

``--floor large`` is the 60 x 20 m floor of 20 rooms (``FLOOR_SIZES["large"]``; its fused map
is about 240 MB at the default voxel size, so a 200 MB budget binds; give it ``--unique 2000``
for the same spacing of frames along the tour as the default floor's 1,000).

``soak`` runs the node without and with ``map.memory_budget_mb`` (``--cases``), and samples once a
second: the node's RSS (``/proc``; the table gives the median of each quarter of the run), its
CPU time and the publisher's RSS, ``map_bytes``, frames integrated and dropped by reason,
the mean integrate / mesh times, and where the node's memory goes (malloc in use, free but
held, arenas, threads, the map's reserved tensors; the node's ``process_*`` diagnostics), from
its ``/diagnostics``. ``--param`` passes node parameters to every run (e.g. ``malloc_arena_max=0
heap_release_period_s=0.0``: glibc's defaults, the node before its allocator settings). ``throughput`` runs fusion only
at each rate and reports the fraction of frames integrated, the end-to-end latency (images published ->
the frame's ``~/integrated`` header back) and the node's CPU time per frame. On a
machine shared with other ROS 2 work, give the run a DDS domain of its own (``ROS_DOMAIN_ID``):
the benchmark's topics are the node's defaults, and another publisher on them mixes in. Both append to benchmarks/RESULTS.md
and write the per-second samples next to it as CSV when ``--csv`` is given.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssr_ros.ros.mapper_client import MapperProcess
from ssr_ros.ros.node_config import NodeConfig


def frame_cache_path(count: int, width: int, height: int, rate: float, seed: int = 1, floor: str = "default") -> Path:
    """Where rendered frames are kept (the temporary directory) for the next run with the same settings."""
    size = "" if floor == "default" else f"_{floor}"
    return Path(tempfile.gettempdir()) / f"ssr_bench_floor{seed}{size}_{count}_{width}x{height}_{rate:g}hz.stack.npz"


def render_frames(count: int, width: int, height: int, rate: float, seed: int = 1, floor: str = "default"):
    """``count`` frames of the tour of floor ``floor`` (a name of ``FLOOR_SIZES``) as a ``FrameStack``
    (6 bytes a pixel), cached in the temporary directory."""
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig
    from ssr_ros.data.synthetic.floor import FLOOR_SIZES, FloorConfig, generate_floor
    from ssr_ros.data.synthetic.frame_stack import FrameStack

    cache = frame_cache_path(count, width, height, rate, seed, floor)
    if cache.exists():
        return FrameStack.load(cache)
    import torch

    scene = generate_floor(seed, FloorConfig(**FLOOR_SIZES[floor]))
    config = SequenceConfig(width=width, height=height,
                            trajectory=TrajectoryConfig(kind="tour", num_frames=count, frame_rate=rate))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor ops: one thread is fastest, by far on a busy machine
    start = time.perf_counter()
    stack = FrameStack.from_frames(SyntheticSequence(scene, config), count)
    torch.set_num_threads(threads)
    print(f"rendered {count} frames of {width}x{height} in {time.perf_counter() - start:.0f} s", flush=True)
    stack.save(cache)
    return stack


@dataclass
class ReplayMessages:
    """The distinct frames as ready-to-publish messages (built once; the publisher's own cost is not the node's)."""

    images: list  # per frame (depth 16UC1, color rgb8, labels mono8/mono16) sensor_msgs/Image
    poses: np.ndarray  # (N, 4, 4) camera-to-world
    stamps_ns: np.ndarray  # (N,)
    info: object  # sensor_msgs/CameraInfo

    @classmethod
    def from_stack(cls, stack) -> "ReplayMessages":
        from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info
        from ssr_ros.ros.conversions.image import numpy_to_image

        label_encoding = "mono8" if stack.labels.dtype == np.uint8 else "mono16"
        images = [(numpy_to_image(stack.depth_mm[i], "16UC1", 0, "cam"), numpy_to_image(stack.rgb[i], "rgb8", 0, "cam"),
                   numpy_to_image(stack.labels[i], label_encoding, 0, "cam")) for i in range(len(stack))]
        return cls(images, stack.poses.copy(), stack.stamps_ns.copy(), intrinsics_to_camera_info(stack.intrinsics, 0, "cam"))

    def __len__(self) -> int:
        return len(self.images)


def replay_messages(count: int, width: int, height: int, rate: float, floor: str = "default") -> ReplayMessages:
    """Render (or load) the frames and keep only their messages: the stacked arrays are freed."""
    messages = ReplayMessages.from_stack(render_frames(count, width, height, rate, floor=floor))
    print(f"{count} distinct frames ready; publisher RSS {rss_bytes(os.getpid()) / 1e6:.0f} MB", flush=True)
    return messages


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``): what it cost the machine,
    whatever else runs on it (wall-clock rates on a shared machine follow the other jobs' load)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[tuple[int, str], float]:
    """CPU seconds (user + system) of each thread of a process so far, keyed by (thread id, name):
    Fast DDS names its native threads (``dds.*``), the interpreter's threads carry the program's name."""
    ticks = os.sysconf("SC_CLK_TCK")
    result = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        result[(int(task.name), name)] = (int(fields[11]) + int(fields[12])) / ticks
    return result


def thread_cpu_line(before: dict, after: dict, frames: int) -> str:
    """The node's CPU per published frame by thread name (threads of one name summed), from two
    :func:`thread_cpu_seconds` readings."""
    by_name: dict[str, float] = {}
    for key, seconds in after.items():
        by_name[key[1]] = by_name.get(key[1], 0.0) + seconds - before.get(key, 0.0)
    parts = sorted(by_name.items(), key=lambda item: -item[1])
    return ("node CPU ms per frame published, by thread: "
            + ", ".join(f"{name} {1e3 * seconds / frames:.1f}" for name, seconds in parts if seconds > 0))


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


OUTPUTS = ("mesh_markers", *MapperProcess.OUTPUTS)
"""The node outputs a benchmark can subscribe to (as RViz or a planner would); the node builds only
the outputs someone subscribes to. The client follows MapperProcess.OUTPUTS; RViz's markers are
subscribed to separately."""


def run_node(name: str, parameters: dict, frames: ReplayMessages, total: int, rate: float, sample_every: float = 1.0,
             reliable: bool = False, subscribe: tuple[str, ...] | None = None, profile: str = "",
             raw_markers: bool = False, parameters_extra: dict | None = None):
    """Publish ``total`` frames (looping over ``frames``) at ``rate``; returns per-second samples and the end state."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS
    from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped

    if reliable:
        parameters = {**parameters, "sensor_qos": "reliable"}
    sensor = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if reliable else qos_profile_sensor_data
    followed = None if subscribe is None else tuple(o for o in subscribe if o in MapperProcess.OUTPUTS)
    command = None
    if profile:  # the node under yappi (benchmarks/node_profile.py), its report written to profile/<name>
        import sys

        command = [sys.executable, str(Path(__file__).with_name("node_profile.py")), str(Path(profile).resolve() / name)]
    mapper = MapperProcess(None, {"pose_source": "topic", **parameters, **(parameters_extra or {})}, client_name=f"soak_{name}", outputs=followed,
                           command=command)
    if subscribe is None or "mesh_markers" in subscribe:  # RViz's view of the mesh
        from rclpy.qos import DurabilityPolicy
        from visualization_msgs.msg import MarkerArray

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        # raw: taken as CDR bytes, not turned into Python objects (RViz reads them in C++; a Python
        # object per triangle corner here took this process a core's fifth, beside the camera)
        mapper.node.create_subscription(MarkerArray, "/ssr_mapper/mesh_markers", lambda msg: None, latched, raw=raw_markers)
    pubs = {key: mapper.node.create_publisher(t, topic, qos) for key, t, topic, qos in [
        ("info", CameraInfo, DEFAULT_TOPICS.camera_info, sensor),
        ("pose", PoseStamped, DEFAULT_TOPICS.pose, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)),
        ("depth", Image, DEFAULT_TOPICS.depth, sensor),
        ("color", Image, DEFAULT_TOPICS.color, sensor),
        ("labels", Image, DEFAULT_TOPICS.labels, sensor)]}
    info = frames.info
    lap_ns = int(frames.stamps_ns[-1] - frames.stamps_ns[0] + 1e9 / rate)
    samples = []
    # end-to-end latency: a frame's ~/integrated header (its stamp) back here, minus when its images went out
    published_at: dict[int, float] = {}
    latencies: list[float] = []

    def on_integrated(header) -> None:
        sent = published_at.get(header.stamp.sec * 1_000_000_000 + header.stamp.nanosec)
        if sent is not None:
            latencies.append(time.perf_counter() - sent)

    from std_msgs.msg import Header

    mapper.node.create_subscription(Header, "/ssr_mapper/integrated", on_integrated, QoSProfile(depth=100))
    try:
        mapper.wait_ready()
        mapper.wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), "subscriptions")
        start = time.perf_counter()
        threads_before = thread_cpu_seconds(mapper.process.pid)
        next_sample = start
        for k in range(total):
            due = start + k / rate
            while time.perf_counter() < due:
                time.sleep(0.0005)
            index = k % len(frames)
            stamp = int(frames.stamps_ns[index]) + (k // len(frames)) * lap_ns
            stamp_msg = matrix_to_pose_stamped(frames.poses[index], "map", stamp)
            pubs["pose"].publish(stamp_msg)
            info.header.stamp = stamp_msg.header.stamp
            pubs["info"].publish(info)
            for key, msg in zip(("depth", "color", "labels"), frames.images[index]):
                msg.header.stamp = stamp_msg.header.stamp
                pubs[key].publish(msg)
            published_at[stamp] = time.perf_counter()
            now = time.perf_counter()
            if now >= next_sample:
                next_sample += sample_every
                samples.append(sample(mapper, now - start, k + 1))
        publishing_s = time.perf_counter() - start  # more than total / rate where this process fell behind
        time.sleep(3.0)  # let the queue drain and diagnostics catch up
        samples.append(sample(mapper, time.perf_counter() - start, total))
        samples[-1]["publishing_s"] = publishing_s
        samples[-1]["thread_cpu"] = thread_cpu_line(threads_before, thread_cpu_seconds(mapper.process.pid), total)
        samples[-1]["latency_ms"] = [1e3 * x for x in latencies]
        return samples
    finally:
        mapper.close()


def sample(mapper, elapsed: float, published: int) -> dict:
    d = mapper.diagnostics
    dropped = {k: int(float(v)) for k, v in d.items() if k.startswith("dropped.")}
    return {
        "t_s": round(elapsed, 1), "published": published,
        "integrated": int(float(d.get("frames_integrated", 0))), "received": int(float(d.get("frames_received", 0))),
        "dropped": sum(dropped.values()), "dropped_by_reason": dropped,
        "node_cpu_s": cpu_seconds(mapper.process.pid), "publisher_cpu_s": cpu_seconds(os.getpid()),
        "rss_mb": rss_bytes(mapper.process.pid) / 1e6, "publisher_rss_mb": rss_bytes(os.getpid()) / 1e6, "map_mb": int(float(d.get("map_bytes", 0))) / 1e6,
        "blocks": int(float(d.get("blocks", 0))), "blocks_on_disk": int(float(d.get("blocks_on_disk", 0))),
        "evicted": int(float(d.get("blocks_evicted", 0))), "reloaded": int(float(d.get("blocks_reloaded", 0))),
        "integrate_ms": float(d.get("integrate_mean_ms", "nan")), "mesh_ms": float(d.get("mesh_mean_ms", "nan")),
        **{name: int(float(d.get(f"process_{name}", 0))) / 1e6 for name in PROCESS_MEMORY},
        "malloc_arenas": int(float(d.get("process_malloc_arenas", 0))), "threads": int(float(d.get("process_threads", 0))),
        "model_mb": int(float(d.get("completion_model_bytes", 0))) / 1e6,
        "map_reserved_mb": int(float(d.get("map_reserved_bytes", 0))) / 1e6, "load_average": os.getloadavg()[0],
    }


PROCESS_MEMORY = ("heap_in_use", "heap_free_held", "heap_mmapped", "rss_anonymous", "rss_file")
"""The node's own memory figures from its /diagnostics (``process_*``, MB in the samples)."""


def latency_line(latencies_ms: list[float]) -> str:
    """Median / 95th percentile / largest end-to-end latency (images published -> frame in the map)."""
    if not latencies_ms:
        return "-"
    median, p95 = np.percentile(latencies_ms, [50, 95])
    return f"{median:.0f} / {p95:.0f} / {max(latencies_ms):.0f}"


def machine_line() -> str:
    import torch

    return (f"Machine: {os.cpu_count()}-core {platform.machine()} CPU, no GPU, shared with other work (load average "
            f"{os.getloadavg()[0]:.1f} at the end); torch {torch.__version__}; Fast DDS on loopback; the publisher "
            "runs on the same cores.")


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        # the last row also carries "thread_cpu" (the node's CPU by thread, a line of text): not a column
        writer = csv.DictWriter(handle, fieldnames=[k for k in rows[0] if k != "dropped_by_reason"], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: v for k, v in row.items() if k != "dropped_by_reason"})


def quarter_medians(values: list[float]) -> list[float]:
    """Median of each quarter of a series (RSS samples swing with the outputs' transient copies:
    one sample says little, a quarter's median says where the process sits)."""
    n = len(values)
    return [float(np.median(values[k * n // 4:max((k + 1) * n // 4, k * n // 4 + 1)])) for k in range(4)]


def node_parameters(pairs: list[str]) -> dict:
    """``name=value`` pairs of ``--param`` as node parameters (numbers and booleans typed as ROS reads them)."""
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--param {pair!r}: expected name=value, e.g. malloc_arena_max=0")
        parameters[name] = value
    return parameters


def soak(args) -> list[str]:
    from ssr_ros.data.synthetic.floor import FLOOR_SIZES, FloorConfig

    frames = replay_messages(args.unique, args.width, args.height, args.rate, args.floor)
    floor = FloorConfig(**FLOOR_SIZES[args.floor])
    extra = node_parameters(args.param)
    lines = ["", f"## Soak: {args.frames} frames of a {args.width}x{args.height} multi-room floor at {args.rate:g} Hz "
             "over DDS, default parameters", "", machine_line(),
             f"Command: `python benchmarks/bench_soak.py soak --frames {args.frames} --unique {args.unique} "
             f"--rate {args.rate:g} --width {args.width} --height {args.height} --budget-mb {args.budget_mb:g} "
             f"--floor {args.floor} --cases {' '.join(args.cases)}{''.join(' --param ' + p for p in args.param)}` "
             f"({args.unique} distinct frames of the `tour` through all {2 * floor.rooms_per_side} rooms of the "
             f"{floor.width:g} x {floor.depth:g} m `generate_floor(1)`, replayed "
             f"{args.frames / args.unique:.1f} times; completion {args.completion}).", "",
             "| case | integrated | dropped (by reason) | node RSS MB, median of each quarter (peak) "
             "| RSS change, last quarter vs second | map MB peak / end | blocks in memory / on disk | evicted / reloaded "
             "| integrate mean ms | mesh mean ms | publisher RSS MB at end |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    completion = {} if args.completion == "default" else {"completion.type": "none"}
    cases = {"plain": ("no budget", 0.0), "budget": (f"budget {args.budget_mb:g} MB", args.budget_mb)}
    for case, budget in (cases[name] for name in args.cases):
        params = {**completion, **extra}
        if budget:
            params["map.memory_budget_mb"] = budget
        rows = run_node("budget" if budget else "plain", params, frames, args.frames, args.rate)
        if args.csv:
            write_csv(Path(args.csv).with_suffix(f".{'budget' if budget else 'plain'}.csv"), rows)
        end = rows[-1]
        rss = [r["rss_mb"] for r in rows]
        quarters = quarter_medians(rss)
        reasons = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(end["dropped_by_reason"].items())) or "none"
        lines.append(
            f"| {case} | {end['integrated']} / {end['published']} ({100 * end['integrated'] / end['published']:.1f} %) "
            f"| {end['dropped']} ({reasons}) | {' / '.join(f'{q:.0f}' for q in quarters)} ({max(rss):.0f}) | "
            f"{100 * (quarters[3] - quarters[1]) / quarters[1]:+.1f} % | {max(r['map_mb'] for r in rows):.0f} / {end['map_mb']:.0f} | "
            f"{end['blocks']} / {end['blocks_on_disk']} | {end['evicted']} / {end['reloaded']} | "
            f"{end['integrate_ms']:.1f} | {end['mesh_ms']:.0f} | {end['publisher_rss_mb']:.0f} |")
        print(lines[-1], flush=True)
        lines.append(memory_line(case, rows))
        print(lines[-1], flush=True)
    return lines


def memory_line(case: str, rows: list[dict]) -> str:
    """The node's memory at the end of a run, by where it goes (medians of the last quarter)."""
    last = rows[len(rows) * 3 // 4:] or rows

    def median(key: str) -> float:
        return float(np.median([r[key] for r in last]))

    return (f"- {case}, last quarter medians: RSS {median('rss_mb'):.0f} MB = anonymous {median('rss_anonymous'):.0f} "
            f"+ file-backed {median('rss_file'):.0f}; malloc: in use {median('heap_in_use'):.0f} MB (of it mmapped "
            f"{median('heap_mmapped'):.0f}), free but held {median('heap_free_held'):.0f} MB in "
            f"{median('malloc_arenas'):.0f} arenas, {median('threads'):.0f} threads; map {median('map_mb'):.0f} MB "
            f"(its tensors with spare capacity {median('map_reserved_mb'):.0f}); "
            f"completion model {median('model_mb'):.1f} MB; load average {median('load_average'):.1f}.")


def throughput(args) -> list[str]:
    frames = replay_messages(args.unique, args.width, args.height, max(args.rates))
    what = "with completion" if args.completion == "default" else "fusion only"
    queue_size = node_parameters(args.param).get("frame_queue_size", NodeConfig().frame_queue_size)
    lines = ["", f"## Node throughput at the camera rate: {args.width}x{args.height}, {what}, default parameters", "",
             machine_line(),
             f"Command: `python benchmarks/bench_soak.py throughput --width {args.width} --height {args.height} "
             f"--rates {' '.join(f'{r:g}' for r in args.rates)} --frames {args.frames} --unique {args.unique}"
             f"{' --reliable' if args.reliable else ''}{' --completion default' if args.completion == 'default' else ''}"
             f"{' --subscribe ' + ' '.join(args.subscribe) if args.subscribe is not None else ''}"
             f"{' --raw-markers' if args.raw_markers else ''}{''.join(' --param ' + p for p in args.param)}` "
             f"(frames of the floor tour; {'reliable' if args.reliable else 'sensor-data'} QoS, frame_queue_size {queue_size}, meshes and voxel outputs at their "
             f"default rates, {'completion as configured by default' if args.completion == 'default' else 'completion.type none'})"
             f"{'; node from ' + args.node_pythonpath if args.node_pythonpath else ''}.", "",
             "| rate Hz | frames | integrated | dropped (by reason) | integrate mean ms | mesh mean ms | map MB at end "
             "| latency ms, median / p95 / max | node CPU ms per frame published | load average |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for rate in args.rates:
        rows = run_node(f"rate{int(rate)}", {} if args.completion == "default" else {"completion.type": "none"}, frames,
                        args.frames, rate,
                        reliable=args.reliable, subscribe=None if args.subscribe is None else tuple(args.subscribe),
                        profile=args.profile, raw_markers=args.raw_markers,
                        parameters_extra=node_parameters(args.param))
        end = rows[-1]
        reasons = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(end["dropped_by_reason"].items())) or "none"
        lines.append(f"| {rate:g} | {end['published']} | {end['integrated']} ({100 * end['integrated'] / end['published']:.1f} %) "
                     f"| {end['dropped']} ({reasons}) | {end['integrate_ms']:.1f} | {end['mesh_ms']:.0f} | {end['map_mb']:.0f} "
                     f"| {latency_line(end['latency_ms'])} | {1e3 * (end['node_cpu_s'] - rows[0]['node_cpu_s']) / end['published']:.1f} | {os.getloadavg()[0]:.1f} |")
        print(lines[-1], flush=True)
        print(end["thread_cpu"], flush=True)
        print(f"frames received by the node {end['received']} of {end['published']}; publishing took "
              f"{end['publishing_s']:.1f} s for {end['published'] / rate:.1f} s of frames; this process (publisher and "
              f"subscribers) CPU ms per frame {1e3 * (end['publisher_cpu_s'] - rows[0]['publisher_cpu_s']) / end['published']:.1f}",
              flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("soak")
    s.add_argument("--frames", type=int, default=10000)
    s.add_argument("--unique", type=int, default=1000, help="distinct frames rendered and replayed in laps")
    s.add_argument("--rate", type=float, default=10.0)
    s.add_argument("--width", type=int, default=320)
    s.add_argument("--height", type=int, default=240)
    s.add_argument("--budget-mb", type=float, default=200.0)
    s.add_argument("--completion", choices=["default", "none"], default="default",
                   help="'default': as the node is configured by default; 'none': fusion only")
    s.add_argument("--floor", choices=["default", "large"], default="default",
                   help="'default': 24 x 20 m, 8 rooms; 'large': 60 x 20 m, 20 rooms (its map exceeds 200 MB)")
    s.add_argument("--cases", nargs="+", choices=["plain", "budget"], default=["plain", "budget"],
                   help="runs, in this order: 'plain' without a budget, 'budget' with --budget-mb")
    s.add_argument("--param", action="append", default=[],
                   help="extra node parameter name=value for every run (repeatable), e.g. malloc_arena_max=0")
    t = sub.add_parser("throughput")
    t.add_argument("--width", type=int, default=640)
    t.add_argument("--height", type=int, default=480)
    t.add_argument("--rates", type=float, nargs="+", default=[15.0, 30.0])
    t.add_argument("--frames", type=int, default=300)
    t.add_argument("--unique", type=int, default=150)
    t.add_argument("--subscribe", nargs="*", default=None, choices=OUTPUTS,
                   help="node outputs this process subscribes to, as RViz or a planner would (outputs nobody "
                   "subscribes to are not built; default: all of them), e.g. --subscribe mesh_markers occupancy")
    t.add_argument("--raw-markers", action="store_true",
                   help="take RViz's markers as serialised bytes (as a C++ subscriber would) instead of Python messages")
    t.add_argument("--param", action="append", default=[], help="node parameter name=value (repeatable)")
    t.add_argument("--reliable", action="store_true",
                   help="reliable QoS on both sides (sensor_qos: reliable) instead of the default sensor-data QoS")
    t.add_argument("--completion", choices=["none", "default"], default="none",
                   help="'none': fusion only (completion.type none); 'default': completion as configured by default")
    t.add_argument("--profile", default="",
                   help="run the node under yappi (benchmarks/node_profile.py; needs yappi importable by the node) "
                   "and write its CPU by thread and function to this folder")
    for p in (s, t):
        p.add_argument("--node-pythonpath", default="",
                       help="PYTHONPATH of the node process only (e.g. another checkout, to compare against it)")
        p.add_argument("--csv", default="", help="write the per-second samples to CSV files with this stem")
        p.add_argument("--results", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args()

    import rclpy

    if args.node_pythonpath:  # the node is a child process: it takes the environment, this process keeps its modules
        os.environ["PYTHONPATH"] = args.node_pythonpath
        # `python -m` puts the working directory first on the child's sys.path: from a checkout the
        # node would import that checkout's ssr_ros whatever PYTHONPATH says
        args.results = str(Path(args.results).resolve())
        args.csv = str(Path(args.csv).resolve()) if args.csv else ""
        if getattr(args, "profile", ""):
            args.profile = str(Path(args.profile).resolve())
        os.chdir(tempfile.mkdtemp(prefix="ssr_bench_soak_"))
    from ssr_ros.ros.dds_transport import apply_transport_profile

    print(apply_transport_profile(), flush=True)
    rclpy.init()
    try:
        lines = soak(args) if args.command == "soak" else throughput(args)
    finally:
        rclpy.try_shutdown()
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.results, "a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
