"""A rendered RGB-D sequence of a synthetic scene: the frames a real camera would give.

``SyntheticSequence(scene, config)`` renders frame ``i`` on demand (random access, each
frame's noise drawn from its own seed) along a generated trajectory:

- ``sequence[i]`` / ``iter(sequence)`` -> ``Frame`` as a sensor would give it: depth with the
  depth-sensor model, quantised to millimetres like a 16UC1 driver (so a bag round trip is
  exact), rgb, labels from the "2D predictor" model, ``frame_id =
  camera_color_optical_frame``;
- ``sequence.view(i)`` -> ``SyntheticView`` with that frame plus the exact rendering
  (depth, classes, instances, normals).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ssr_ros.config import param, validate_config
from ssr_ros.data.synthetic.depth_noise import DepthNoiseConfig, apply_depth_noise
from ssr_ros.data.synthetic.label_noise import LabelNoiseConfig, apply_label_noise
from ssr_ros.data.synthetic.renderer import RenderedView
from ssr_ros.data.synthetic.trajectory import TrajectoryConfig, generate_trajectory
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame

CAMERA_FRAME_ID = "camera_color_optical_frame"
"""TF frame of the synthetic camera (a RealSense-style optical frame name)."""


@dataclass
class SequenceConfig:
    """Camera, path and sensor models of a synthetic sequence."""

    width: int = param(640, "image width, pixels", low=8, high=4096)
    height: int = param(480, "image height, pixels", low=8, high=4096)
    focal_ratio: float = param(0.96, "focal length as a fraction of the width (0.96: ~67 deg horizontal FOV)", low=0.2, high=5.0)
    quantize_depth_mm: bool = param(True, "round depth to whole millimetres like a 16UC1 driver")
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    depth_noise: DepthNoiseConfig = field(default_factory=DepthNoiseConfig)
    label_noise: LabelNoiseConfig = field(default_factory=LabelNoiseConfig)

    def validate(self) -> "SequenceConfig":
        return validate_config(self)

    def intrinsics(self) -> CameraIntrinsics:
        f = self.focal_ratio * self.width
        return CameraIntrinsics(f, f, self.width / 2 - 0.5, self.height / 2 - 0.5, self.width, self.height)


@dataclass
class SyntheticView:
    """A sensor ``frame`` with the exact ``rendering`` it was made from (for training targets)."""

    frame: Frame
    rendering: RenderedView
    index: int


def quantize_depth(depth: np.ndarray) -> np.ndarray:
    """Depth rounded to millimetres exactly as a 16UC1 image decodes (uint16 mm * 0.001)."""
    mm = np.clip(np.round(np.asarray(depth, dtype=np.float64) * 1000.0), 0, 65535).astype(np.uint16)
    return mm.astype(np.float32) * np.float32(0.001)


class SyntheticSequence:
    """Frames of ``scene`` along a trajectory; see the module docstring."""

    def __init__(self, scene, config: SequenceConfig | None = None, seed: int | None = None, device: torch.device | str = "cpu"):
        self.scene = scene
        self.config = (config or SequenceConfig()).validate()
        self.seed = scene.seed if seed is None else int(seed)
        self.device = device
        self.intrinsics = self.config.intrinsics()
        self.trajectory = generate_trajectory(scene, self.config.trajectory, self.seed)

    def __len__(self) -> int:
        return len(self.trajectory.poses)

    def __getitem__(self, index: int) -> Frame:
        return self.view(index).frame

    def __iter__(self):
        for i in range(len(self)):
            yield self.view(i).frame

    def views(self):
        for i in range(len(self)):
            yield self.view(i)

    def view(self, index: int) -> SyntheticView:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range for a sequence of {len(self)} frames")
        index = index % len(self)
        pose = self.trajectory.poses[index]
        rendering = self.scene.render(pose, self.intrinsics, device=self.device)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index, 0xD3]))
        depth = apply_depth_noise(rendering.depth, rendering.cos_incidence, self.config.depth_noise, rng)
        if self.config.quantize_depth_mm:
            depth = quantize_depth(depth)
        labels = apply_label_noise(rendering.class_ids, rendering.instance_ids, self.config.label_noise, rng, self.scene.taxonomy)
        frame = Frame(
            depth=depth,
            intrinsics=self.intrinsics,
            T_world_cam=pose.copy(),
            rgb=rendering.rgb,
            labels=labels.astype(np.uint8) if self.scene.taxonomy.num_classes <= 256 else labels,
            stamp_ns=int(self.trajectory.stamps_ns[index]),
            frame_id=CAMERA_FRAME_ID,
        )
        return SyntheticView(frame, rendering, index)
