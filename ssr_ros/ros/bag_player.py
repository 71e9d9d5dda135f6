"""Replay a rosbag2 file through rclpy with its recorded timing (``ros2 bag play`` for pip installs).

Messages are published as the recorded CDR bytes, so nothing is decoded or re-encoded.
Topics whose message type is not importable here (for example ``tf2_msgs`` in the pip
route) are skipped and reported. With ``publish_clock`` the player also publishes
``/clock`` so that nodes with ``use_sim_time`` follow the bag's time.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from ssr_ros.errors import DatasetError


@dataclass
class PlaybackReport:
    """What a replay did: messages published per topic, skipped topics and why, wall time."""

    published: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0
    bag_duration_s: float = 0.0


def import_message_type(type_name: str):
    """The rclpy class of ``package/msg/Type``; ImportError if it is not installed."""
    parts = type_name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ImportError(f"malformed message type name '{type_name}'")
    package, kind, name = parts
    module = importlib.import_module(f"{package}.{kind}")
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f"{package}.{kind} has no type {name}") from None


def open_bag(path: str | Path):
    """An opened rosbags Reader; DatasetError naming the file when it cannot be read."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"bag '{path}' does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:  # rosbags raises several unrelated types for broken bags
        raise DatasetError(f"cannot open bag '{path}': {error}") from error
    return reader


def play_bag(
    node,
    path: str | Path,
    topics: list[str] | None = None,
    rate: float = 1.0,
    wait_for_subscribers_s: float = 0.0,
    publish_clock: bool = False,
    progress: bool = False,
    remap: dict[str, str] | None = None,
) -> PlaybackReport:
    """Publish the bag's messages from ``node`` with the recorded inter-message timing.

    ``rate`` scales playback speed (2.0 = twice as fast; 0 = as fast as possible).
    ``wait_for_subscribers_s`` waits up to that long until every played topic has a
    subscriber, so the first frames are not lost to discovery.
    """
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    if rate < 0:
        raise ValueError(f"rate must be >= 0, got {rate}")
    remap = remap or {}
    report = PlaybackReport()
    reader = open_bag(path)
    try:
        available = {c.topic: c for c in reader.connections}
        if topics:
            missing = [t for t in topics if t not in available]
            if missing:
                raise DatasetError(f"bag '{path}' has no topic(s) {missing}; it has {sorted(available)}")
        selected = [c for c in reader.connections if not topics or c.topic in topics]
        publishers = {}
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        for connection in selected:
            if getattr(connection.ext, "serialization_format", "cdr") != "cdr":
                report.skipped[connection.topic] = f"serialization {connection.ext.serialization_format}"
                continue
            try:
                msg_type = import_message_type(connection.msgtype)
            except ImportError as error:
                report.skipped[connection.topic] = f"type {connection.msgtype} not installed ({error})"
                continue
            if connection.topic not in publishers:
                publishers[connection.topic] = node.create_publisher(
                    msg_type, remap.get(connection.topic, connection.topic), qos
                )
                report.published[connection.topic] = 0
        clock_publisher = None
        if publish_clock:
            from rosgraph_msgs.msg import Clock

            clock_publisher = node.create_publisher(Clock, "/clock", 10)

        if wait_for_subscribers_s > 0:
            deadline = time.monotonic() + wait_for_subscribers_s
            while time.monotonic() < deadline and not all(p.get_subscription_count() for p in publishers.values()):
                time.sleep(0.05)

        connections = [c for c in selected if c.topic in publishers]
        total = sum(c.msgcount for c in connections)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="msg", desc=f"play {Path(path).name}")
        start_wall = time.monotonic()
        first_stamp = None
        last_stamp = None
        try:
            for connection, stamp_ns, raw in reader.messages(connections=connections):
                if first_stamp is None:
                    first_stamp = stamp_ns
                last_stamp = stamp_ns
                if rate > 0:
                    due = start_wall + (stamp_ns - first_stamp) * 1e-9 / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if clock_publisher is not None:
                    from builtin_interfaces.msg import Time
                    from rosgraph_msgs.msg import Clock

                    clock_publisher.publish(Clock(clock=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)))
                publishers[connection.topic].publish(bytes(raw))
                report.published[connection.topic] += 1
                if bar is not None:
                    bar.update(1)
        except Exception as error:
            if isinstance(error, DatasetError):
                raise
            raise DatasetError(f"bag '{path}' is truncated or corrupt: {error}") from error
        finally:
            if bar is not None:
                bar.close()
        report.wall_time_s = time.monotonic() - start_wall
        if first_stamp is not None:
            report.bag_duration_s = (last_stamp - first_stamp) * 1e-9
        return report
    finally:
        reader.close()
