"""Many rendered frames of one camera held as stacked arrays: what a replay benchmark publishes.

A list of ``Frame`` objects costs 8 bytes a pixel (float32 depth, rgb, labels) and every array is
a separate allocation; a ``FrameStack`` stores the same frames as a sensor driver sends them
(16UC1 millimetre depth, rgb8, mono8 labels: 6 bytes a pixel) in one array per image kind, and
saves / loads them as one ``.npz`` file. ``stack.frame(i)`` gives frame ``i`` as a ``Frame``
whose rgb and labels are views into the stack (no copy) and whose depth is converted to metres
for that frame only.

Loading reads each array of the file exactly once: indexing ``np.load(path)[key]`` per frame
would decompress the whole array again for every frame and keep every copy alive through the
frame's view (memory quadratic in the frame count).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssr_ros.atomic_file import atomic_write
from ssr_ros.errors import InvalidFrame
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame

DEPTH_SCALE = 0.001
"""Metres per unit of ``depth_mm`` (the 16UC1 convention)."""


@dataclass
class FrameStack:
    """N frames of one camera.

    depth_mm: (N, H, W) uint16 depth in millimetres, 0 = invalid.
    rgb: (N, H, W, 3) uint8.
    labels: (N, H, W) uint8 or uint16 class ids.
    poses: (N, 4, 4) float64 camera-to-world, OpenCV optical frame.
    stamps_ns: (N,) int64 acquisition times.
    """

    intrinsics: CameraIntrinsics
    depth_mm: np.ndarray
    rgb: np.ndarray
    labels: np.ndarray
    poses: np.ndarray
    stamps_ns: np.ndarray
    frame_id: str = "camera"

    def __post_init__(self) -> None:
        n, (h, w) = len(self.depth_mm), self.intrinsics.shape
        expected = {"depth_mm": (n, h, w), "rgb": (n, h, w, 3), "labels": (n, h, w), "poses": (n, 4, 4), "stamps_ns": (n,)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise InvalidFrame(f"frame stack {name} has shape {getattr(self, name).shape}; expected {shape}")
        if self.depth_mm.dtype != np.uint16:
            raise InvalidFrame(f"frame stack depth_mm must be uint16 millimetres, got {self.depth_mm.dtype}")

    def __len__(self) -> int:
        return len(self.depth_mm)

    @property
    def nbytes(self) -> int:
        """Bytes held by the stacked arrays."""
        return sum(a.nbytes for a in (self.depth_mm, self.rgb, self.labels, self.poses, self.stamps_ns))

    def frame(self, index: int) -> Frame:
        """Frame ``index``: depth (H, W) float32 metres (a new array), rgb and labels views into the stack."""
        return Frame(
            depth=self.depth_mm[index].astype(np.float32) * np.float32(DEPTH_SCALE),
            intrinsics=self.intrinsics,
            T_world_cam=self.poses[index].copy(),
            rgb=self.rgb[index],
            labels=self.labels[index],
            stamp_ns=int(self.stamps_ns[index]),
            frame_id=self.frame_id,
        )

    @classmethod
    def from_frames(cls, frames: Iterable[Frame], count: int) -> "FrameStack":
        """Stack ``count`` frames (e.g. a ``SyntheticSequence``), filling preallocated arrays as they come.

        Depth is rounded to whole millimetres; every frame needs rgb and labels and the intrinsics
        of the first.
        """
        stack = None
        filled = 0
        for i, frame in enumerate(frames):
            if i >= count:
                break
            if frame.rgb is None or frame.labels is None:
                raise InvalidFrame(f"frame {i} has no {'rgb' if frame.rgb is None else 'labels'}; a frame stack needs both")
            if stack is None:
                h, w = frame.intrinsics.shape
                label_dtype = np.uint8 if np.asarray(frame.labels).dtype == np.uint8 else np.uint16
                stack = cls(frame.intrinsics, np.zeros((count, h, w), np.uint16), np.zeros((count, h, w, 3), np.uint8),
                            np.zeros((count, h, w), label_dtype), np.zeros((count, 4, 4)), np.zeros(count, np.int64),
                            frame.frame_id)
            elif frame.intrinsics != stack.intrinsics:
                raise InvalidFrame(f"frame {i} has intrinsics {frame.intrinsics}; the stack holds {stack.intrinsics}")
            depth = np.nan_to_num(np.asarray(frame.depth, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            stack.depth_mm[i] = np.clip(np.round(depth / DEPTH_SCALE), 0, np.iinfo(np.uint16).max)
            stack.rgb[i] = frame.rgb
            stack.labels[i] = frame.labels
            stack.poses[i] = frame.T_world_cam
            stack.stamps_ns[i] = frame.stamp_ns
            filled = i + 1
        if filled != count:
            raise InvalidFrame(f"a frame stack of {count} frames got only {filled}")
        return stack

    def save(self, path: str | Path) -> None:
        """Write the stack to one uncompressed ``.npz`` file (atomically)."""
        k = self.intrinsics
        with atomic_write(path, "frame stack") as handle:
            np.savez(handle, depth_mm=self.depth_mm, rgb=self.rgb, labels=self.labels, poses=self.poses,
                     stamps_ns=self.stamps_ns, intrinsics=np.array([k.fx, k.fy, k.cx, k.cy, k.width, k.height]),
                     frame_id=np.array(self.frame_id))

    @classmethod
    def load(cls, path: str | Path) -> "FrameStack":
        """Read a stack written by :meth:`save`; each array is read once."""
        with np.load(path, allow_pickle=False) as data:
            fx, fy, cx, cy, width, height = data["intrinsics"].tolist()
            return cls(CameraIntrinsics(fx, fy, cx, cy, int(width), int(height)), data["depth_mm"], data["rgb"],
                       data["labels"], data["poses"], data["stamps_ns"], str(data["frame_id"]))
