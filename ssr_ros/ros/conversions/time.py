"""builtin_interfaces/Time <-> integer nanoseconds."""

from __future__ import annotations

from builtin_interfaces.msg import Time

from ssr_ros.errors import InconsistentMessage


def stamp_to_ns(stamp: Time) -> int:
    """Nanoseconds since the epoch of a ROS time stamp."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(nanoseconds: int) -> Time:
    """ROS time stamp of a non-negative nanosecond count."""
    nanoseconds = int(nanoseconds)
    if nanoseconds < 0:
        raise InconsistentMessage(f"time stamp {nanoseconds} ns is negative")
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)
