"""The order of frame stamps in a live stream: the next frame, a stale one, or a clock jump.

A live mapper integrates frames in stamp order. A frame stamped at or before the last
integrated one is stale (a duplicate, or one overtaken by a newer frame) and is dropped. But a
stamp far *before* the last one is not a late frame: the clock went back (a bag played in a
loop, a simulator restarted), and dropping every frame until the stamps pass the old last
stamp would freeze the map. :class:`FrameOrder` tells the two apart by a threshold.

No ROS here: stamps are integer nanoseconds.
"""

from __future__ import annotations

import enum

from ssr_ros.errors import ConfigError


class StampVerdict(enum.Enum):
    NEXT = "next"
    """After the last integrated frame (or the first frame): integrate it."""
    STALE = "stale"
    """At or at most ``jump_threshold_s`` before the last integrated frame: drop it."""
    JUMP_BACK = "jump_back"
    """More than ``jump_threshold_s`` before the last integrated frame: the clock jumped back."""


class FrameOrder:
    """Classifies frame stamps against the last integrated one (see :class:`StampVerdict`).

    ``check(stamp_ns)`` says what a frame is; ``accept(stamp_ns)`` records an integrated frame;
    ``reset()`` forgets the last stamp (after a map reset / load or a clock jump).
    """

    def __init__(self, jump_threshold_s: float) -> None:
        if not jump_threshold_s > 0:
            raise ConfigError(f"jump_threshold_s={jump_threshold_s!r} must be > 0 seconds")
        self._jump_ns = int(round(jump_threshold_s * 1e9))
        self.last_ns: int | None = None
        """Stamp of the last integrated frame, nanoseconds (None before the first)."""

    def check(self, stamp_ns: int) -> StampVerdict:
        if self.last_ns is None or stamp_ns > self.last_ns:
            return StampVerdict.NEXT
        if self.last_ns - stamp_ns > self._jump_ns:
            return StampVerdict.JUMP_BACK
        return StampVerdict.STALE

    def accept(self, stamp_ns: int) -> None:
        self.last_ns = int(stamp_ns)

    def reset(self) -> None:
        self.last_ns = None
