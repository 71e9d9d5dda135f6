"""Serialised ROS 2 messages written from NumPy arrays, as ``rclpy.serialization.serialize_message``
would write them (little-endian CDR, the encapsulation rclpy's middlewares use), for messages whose
generated Python classes would need an object per element (``geometry_msgs/Point[]``) or a
message object per map block. ``Publisher.publish`` accepts the bytes. Tests compare what
rclpy reads back from these bytes with the generated messages (rclpy leaves padding bytes
uninitialised, so bytes are not compared directly).
"""

from __future__ import annotations

import struct

from ssr_ros.errors import InconsistentMessage

_ENCAPSULATION = b"\x00\x01\x00\x00"  # CDR, little endian, no options


class CdrWriter:
    """Little-endian CDR (XCDR1): values aligned to their size relative to the payload start, after
    the 4-byte encapsulation header; ``bytes()`` is the whole serialised message."""

    def __init__(self) -> None:
        self.parts: list[bytes] = [_ENCAPSULATION]
        self.offset = 0

    def align(self, size: int) -> None:
        pad = -self.offset % size
        if pad:
            self.parts.append(b"\x00" * pad)
            self.offset += pad

    def raw(self, data: bytes, align: int) -> None:
        self.align(align)
        self.parts.append(data)
        self.offset += len(data)

    def pack(self, fmt: str, align: int, *values) -> None:
        self.raw(struct.pack("<" + fmt, *values), align)

    def string(self, text: str) -> None:
        data = text.encode("utf-8")
        self.pack("I", 4, len(data) + 1)
        self.raw(data + b"\x00", 1)

    def stamp(self, stamp_ns: int) -> None:
        stamp_ns = int(stamp_ns)
        if stamp_ns < 0:
            raise InconsistentMessage(f"time stamp {stamp_ns} ns is negative")
        self.pack("iI", 4, stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def aligned(offset: int, size: int) -> int:
    """``offset`` rounded up to a multiple of ``size``."""
    return offset + (-offset % size)
