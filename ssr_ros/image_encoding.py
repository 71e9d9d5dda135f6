"""Raw image buffers <-> NumPy arrays for the encodings of sensor_msgs/Image.

ROS-free so that the rclpy conversions (``ssr_ros.ros.conversions``) and the rosbag2
reader/writer (``rosbags`` message classes) share one implementation. A buffer is described
by ``height, width, encoding, is_bigendian, step`` (bytes per row, >= width * pixel size,
the rest of each row being padding) and ``data`` (``height * step`` bytes).
"""

from __future__ import annotations

import re

import numpy as np

from ssr_ros.errors import InconsistentMessage, UnsupportedEncoding

# encoding -> (dtype of one channel, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
}
DEPTH_ENCODINGS = ("16UC1", "32FC1")
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
LABEL_ENCODINGS = ("mono8", "mono16", "8UC1", "16UC1")


MULTICHANNEL = re.compile(r"^(8U|32F)C\(?([0-9]+)\)?$")
"""OpenCV-style encodings with any channel count: 8UC<N> / 32FC<N> (also written 8UC(N))."""


def _format(encoding: str) -> tuple[np.dtype, int]:
    if encoding in ENCODINGS:
        return ENCODINGS[encoding]
    match = MULTICHANNEL.match(encoding)
    if match and int(match.group(2)) >= 1:
        return np.dtype(np.uint8 if match.group(1) == "8U" else np.float32), int(match.group(2))
    raise UnsupportedEncoding(
        f"image encoding '{encoding}' not supported; expected one of {sorted(ENCODINGS)} or 8UC<N> / 32FC<N>"
    )


def decode_image(
    height: int, width: int, encoding: str, is_bigendian: bool, step: int, data: bytes | bytearray | memoryview | np.ndarray
) -> np.ndarray:
    """Array view of an image buffer: (H, W) for one channel, (H, W, C) otherwise.

    Row padding is dropped, the byte order converted to native, and the result is a fresh
    array that does not alias ``data``. Raises InconsistentMessage when ``step`` or the data
    length do not fit the size and encoding, UnsupportedEncoding for unknown encodings.
    """
    dtype, channels = _format(encoding)
    if height < 0 or width < 0:
        raise InconsistentMessage(f"image size {width}x{height} is negative")
    pixel_bytes = dtype.itemsize * channels
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise InconsistentMessage(
            f"image step {step} is smaller than width * pixel size = {width} * {pixel_bytes} = "
            f"{row_bytes} bytes for encoding '{encoding}'"
        )
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).reshape(-1)
    if buffer.size != height * step:
        raise InconsistentMessage(
            f"image data has {buffer.size} bytes; expected height * step = {height} * {step} = {height * step}"
        )
    rows = buffer.reshape(height, step)[:, :row_bytes] if height else buffer.reshape(0, max(step, 1))[:, :row_bytes]
    wire = dtype.newbyteorder(">" if is_bigendian else "<") if dtype.itemsize > 1 else dtype
    image = np.ascontiguousarray(rows).view(wire).reshape((height, width, channels) if channels > 1 else (height, width))
    return image.astype(dtype.newbyteorder("="), copy=True)


def encode_image(image: np.ndarray, encoding: str, step: int | None = None, is_bigendian: bool = False) -> tuple[int, int, int, bytes]:
    """Buffer of an array: returns ``(height, width, step, data)``.

    ``image`` must be (H, W) for one-channel encodings and (H, W, C) otherwise, with the
    encoding's dtype (uint8 for rgb8/mono8, uint16 for 16UC1/mono16, float32 for 32FC1).
    ``step`` defaults to the packed row size; a larger step pads rows with zeros.
    """
    dtype, channels = _format(encoding)
    image = np.asarray(image)
    expected_ndim = 2 if channels == 1 else 3
    if image.ndim != expected_ndim or (channels > 1 and image.shape[2] != channels):
        raise InconsistentMessage(
            f"array of shape {image.shape} cannot be encoded as '{encoding}'; expected "
            f"{'(H, W)' if channels == 1 else f'(H, W, {channels})'}"
        )
    if image.dtype != dtype:
        raise InconsistentMessage(f"array of dtype {image.dtype} cannot be encoded as '{encoding}'; expected {dtype}")
    height, width = image.shape[:2]
    row_bytes = width * dtype.itemsize * channels
    step = row_bytes if step is None else int(step)
    if step < row_bytes:
        raise InconsistentMessage(f"step {step} is smaller than the row size {row_bytes} of '{encoding}'")
    wire = image.astype(dtype.newbyteorder(">" if is_bigendian else "<"), copy=False)
    rows = np.zeros((height, step), dtype=np.uint8)
    rows[:, :row_bytes] = np.ascontiguousarray(wire).view(np.uint8).reshape(height, row_bytes)
    return height, width, step, rows.tobytes()


def depth_to_metres(depth: np.ndarray, encoding: str, depth_scale: float = 0.001) -> np.ndarray:
    """(H, W) float32 metres from a decoded depth image; invalid pixels (0, NaN, Inf) become 0.

    16UC1 is millimetres by ROS convention (``depth_scale`` metres per unit), 32FC1 metres.
    """
    if encoding == "16UC1":
        metres = depth.astype(np.float32) * np.float32(depth_scale)
    elif encoding == "32FC1":
        metres = depth.astype(np.float32, copy=True)
    else:
        raise UnsupportedEncoding(
            f"depth encoding '{encoding}' not supported; expected one of {list(DEPTH_ENCODINGS)}"
        )
    metres[~np.isfinite(metres) | (metres < 0)] = 0.0
    return metres


def color_to_rgb(image: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a decoded color image of any supported color encoding."""
    if encoding == "rgb8":
        return image
    if encoding == "bgr8":
        return np.ascontiguousarray(image[..., ::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(image[..., :3])
    if encoding == "bgra8":
        return np.ascontiguousarray(image[..., 2::-1])
    if encoding == "mono8":
        return np.repeat(image[..., None], 3, axis=2)
    raise UnsupportedEncoding(
        f"color encoding '{encoding}' not supported; expected one of {list(COLOR_ENCODINGS)}"
    )


def labels_to_ids(image: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W) int64 class ids from a decoded label image (mono8 / mono16)."""
    if encoding not in LABEL_ENCODINGS:
        raise UnsupportedEncoding(
            f"label encoding '{encoding}' not supported; expected one of {list(LABEL_ENCODINGS)}"
        )
    return image.astype(np.int64)
