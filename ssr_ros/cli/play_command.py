"""``ssr play BAG``: publish a rosbag2 file's messages through rclpy with their recorded timing."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "play",
        help="replay a rosbag2 file over ROS 2 (like `ros2 bag play`)",
        description="Publish the messages of a rosbag2 file (sqlite3 or mcap) with their recorded "
        "timing through rclpy, for machines without the ros2 bag tools. Messages are sent as "
        "recorded (CDR bytes); topics whose type is not installed are skipped and listed.",
    )
    parser.add_argument("bag", help="rosbag2 directory (or its .db3 / .mcap file)")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default: all)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor; 0 = as fast as possible (default 1)")
    parser.add_argument("--clock", action="store_true", help="also publish /clock from the bag's time stamps")
    parser.add_argument(
        "--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
        help="wait up to SECONDS until every played topic has a subscriber before starting",
    )
    parser.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO", help="publish topic FROM as TO")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import rclpy
    except ImportError:
        print("ssr play: rclpy is not installed; run `make setup` or source a ROS 2 installation", file=sys.stderr)
        return 2
    from ssr_ros.ros.bag_player import play_bag

    remap = {}
    for item in args.remap:
        if ":=" not in item:
            print(f"ssr play: error: remap '{item}' is not FROM:=TO", file=sys.stderr)
            return 2
        source, target = item.split(":=", 1)
        remap[source] = target
    from ssr_ros.ros.dds_transport import apply_transport_profile

    print(apply_transport_profile(), file=sys.stderr)  # before the first DDS participant exists
    rclpy.init()
    node = rclpy.create_node("ssr_bag_player")
    try:
        report = play_bag(node, args.bag, args.topics, args.rate, args.wait_for_subscribers, args.clock, True, remap)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    for topic, count in sorted(report.published.items()):
        print(f"  {topic}: {count} messages")
    for topic, reason in sorted(report.skipped.items()):
        print(f"  {topic}: skipped, {reason}")
    print(f"played {report.bag_duration_s:.2f} s of bag time in {report.wall_time_s:.2f} s")
    return 0
