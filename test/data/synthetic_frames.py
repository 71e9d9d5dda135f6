"""Small synthetic frames shared by the reader / writer tests."""

from __future__ import annotations

from functools import lru_cache

from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene


@lru_cache(maxsize=1)
def small_frames(count: int = 4):
    """``count`` noisy 80x60 frames of scene 3 (depth in mm steps, rgb, labels, poses)."""
    scene = generate_scene(3)
    config = SequenceConfig(width=80, height=60, trajectory=TrajectoryConfig(num_frames=count))
    return tuple(SyntheticSequence(scene, config))
