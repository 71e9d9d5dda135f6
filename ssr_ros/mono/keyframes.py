"""Key-frame selection by camera motion (CDRNet / NeuralRecon: 15 degrees or 0.1 m).

A frame becomes a key frame when the camera has turned by at least ``rotation_deg`` or moved
by at least ``translation_m`` since the last key frame; the first frame always is one. In
monocular mode only key frames are predicted and fused: frames between them add little new
geometry and cost a network pass each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ssr_ros.config import param, validate_config
from ssr_ros.geometry.pose import validate_pose


@dataclass
class KeyFrameConfig:
    """When a frame is a key frame (0 and 0: every frame is)."""

    rotation_deg: float = param(15.0, "rotation since the last key frame that makes a new one, degrees", low=0.0, high=180.0)
    translation_m: float = param(0.1, "translation since the last key frame that makes a new one, metres", low=0.0, high=100.0)

    def validate(self) -> "KeyFrameConfig":
        return validate_config(self)


def relative_motion(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(rotation angle in degrees, translation in metres) between two camera-to-world poses."""
    R = T_a[:3, :3].T @ T_b[:3, :3]
    cos = float(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))
    return math.degrees(math.acos(cos)), float(np.linalg.norm(T_b[:3, 3] - T_a[:3, 3]))


class KeyFrameSelector:
    """``selector.is_key(T_world_cam)`` -> bool, remembering the last key frame's pose."""

    def __init__(self, config: KeyFrameConfig | None = None) -> None:
        self.config = (config or KeyFrameConfig()).validate()
        self.last_key: np.ndarray | None = None
        self.frames_seen = 0
        self.key_frames = 0

    def is_key(self, T_world_cam: np.ndarray) -> bool:
        """Whether a frame at this pose is a key frame (it then becomes the reference)."""
        T = validate_pose(T_world_cam, "T_world_cam")
        self.frames_seen += 1
        key = self.last_key is None
        if not key:
            rotation, translation = relative_motion(self.last_key, T)
            key = rotation >= self.config.rotation_deg or translation >= self.config.translation_m
        if key:
            self.last_key = np.array(T, dtype=np.float64)
            self.key_frames += 1
        return key

    def reset(self) -> None:
        self.last_key = None
