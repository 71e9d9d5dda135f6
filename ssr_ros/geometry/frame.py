"""The RGB-D ``Frame``: what readers yield, the node assembles, and the map integrates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.errors import InvalidFrame
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.pose import validate_pose


@dataclass
class Frame:
    """One synchronised RGB-D observation with its camera pose.

    depth: (H, W) float32 metres along the optical axis; 0, NaN and Inf are invalid.
    rgb: (H, W, 3) uint8 sRGB, or None.
    labels: (H, W) integer class ids of the taxonomy (2D semantics), or None.
    label_confidence: (H, W) float32 in [0, 1], the strength of each pixel's label vote, or None
        (every label counts fully); only with labels.
    label_probs: (H, W, C) float32 per-class probabilities, or None (alternative to labels).
    intrinsics: pinhole intrinsics of all images (same size).
    T_world_cam: (4, 4) float64 camera-to-world pose, OpenCV optical camera frame.
    stamp_ns: acquisition time, integer nanoseconds (ROS time).
    frame_id: the camera's TF frame or a dataset frame name.
    depth_weight: (H, W) float32 in [0, 1], how much each depth pixel counts in fusion, or None
        (every pixel fully); set by monocular mode from the predicted depth's confidence.
    instance_ids: (H, W) integer object instance per pixel (2D instance segmentation; 0 = none),
        or None. Ids only group the pixels of one frame; the map associates them across frames.
    """

    depth: np.ndarray
    intrinsics: CameraIntrinsics
    T_world_cam: np.ndarray
    rgb: np.ndarray | None = None
    labels: np.ndarray | None = None
    label_confidence: np.ndarray | None = None
    label_probs: np.ndarray | None = None
    stamp_ns: int = 0
    frame_id: str = "camera"
    depth_weight: np.ndarray | None = None
    instance_ids: np.ndarray | None = None

    def validate(self) -> "Frame":
        """Check shapes, dtypes and the pose; raise InvalidFrame / InvalidPose naming the problem.

        Depth is converted to float32 in place; at least one valid depth pixel is required.
        """
        shape = self.intrinsics.shape
        depth = np.asarray(self.depth)
        if depth.ndim != 2:
            raise InvalidFrame(f"depth must be a 2-D image, got shape {depth.shape}")
        if depth.shape != shape:
            raise InvalidFrame(
                f"depth is {depth.shape[1]}x{depth.shape[0]} but the intrinsics are "
                f"{self.intrinsics.width}x{self.intrinsics.height}"
            )
        self.depth = depth.astype(np.float32, copy=False)
        if self.rgb is not None:
            rgb = np.asarray(self.rgb)
            if rgb.shape != shape + (3,) or rgb.dtype != np.uint8:
                raise InvalidFrame(
                    f"rgb must be uint8 of shape {shape + (3,)}, got {rgb.dtype} {rgb.shape}"
                )
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != shape or not np.issubdtype(labels.dtype, np.integer):
                raise InvalidFrame(
                    f"labels must be an integer image of shape {shape}, got {labels.dtype} {labels.shape}"
                )
        if self.label_confidence is not None:
            confidence = np.asarray(self.label_confidence)
            if self.labels is None:
                raise InvalidFrame("label_confidence needs labels")
            if confidence.shape != shape or not np.issubdtype(confidence.dtype, np.floating):
                raise InvalidFrame(
                    f"label_confidence must be a float image of shape {shape}, got {confidence.dtype} {confidence.shape}"
                )
        if self.label_probs is not None:
            probs = np.asarray(self.label_probs)
            if probs.ndim != 3 or probs.shape[:2] != shape:
                raise InvalidFrame(
                    f"label_probs must have shape {shape} + (C,), got {probs.shape}"
                )
        if self.instance_ids is not None:
            check_instance_image(self.instance_ids, shape)
        if self.depth_weight is not None:
            weight = np.asarray(self.depth_weight)
            if weight.shape != shape or not np.issubdtype(weight.dtype, np.floating):
                raise InvalidFrame(f"depth_weight must be a float image of shape {shape}, got {weight.dtype} {weight.shape}")
            if not np.all(np.isfinite(weight) & (weight >= 0) & (weight <= 1)):
                raise InvalidFrame("depth_weight must lie in [0, 1]")
        self.T_world_cam = validate_pose(self.T_world_cam, "T_world_cam")
        if not np.any(self.valid_depth_mask()):
            raise InvalidFrame("depth has no valid pixel (all zero, NaN or Inf)")
        return self

    def valid_depth_mask(self) -> np.ndarray:
        """(H, W) bool: finite, strictly positive depth."""
        depth = np.asarray(self.depth)
        return np.isfinite(depth) & (depth > 0)


def check_instance_image(instance_ids, shape: tuple[int, int]) -> None:
    """Raise InvalidFrame unless ``instance_ids`` is a non-negative integer image of ``shape``."""
    ids = np.asarray(instance_ids.cpu() if hasattr(instance_ids, "cpu") else instance_ids)
    if tuple(ids.shape) != tuple(shape) or not np.issubdtype(ids.dtype, np.integer):
        raise InvalidFrame(f"instance_ids must be an integer image of shape {tuple(shape)} (the depth's), got {ids.dtype} {tuple(ids.shape)}")
    if ids.size and int(ids.min()) < 0:
        raise InvalidFrame(f"instance_ids must be >= 0 (0 = no instance), got {int(ids.min())}")
