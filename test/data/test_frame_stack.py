"""FrameStack: rendered frames stacked as sensor data, saved and loaded in memory linear in the frames."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, simple_scene
from ssr_ros.data.synthetic.frame_stack import FrameStack
from ssr_ros.errors import InvalidFrame
from ssr_ros.geometry.camera import CameraIntrinsics


@pytest.fixture(scope="module")
def sequence():
    config = SequenceConfig(width=32, height=24, trajectory=TrajectoryConfig(num_frames=4))
    return SyntheticSequence(simple_scene(), config)


def test_stack_holds_the_frames_as_a_16uc1_driver_sends_them(sequence):
    stack = FrameStack.from_frames(sequence, len(sequence))
    assert len(stack) == 4 and stack.depth_mm.dtype == np.uint16 and stack.labels.dtype == np.uint8
    for i, original in enumerate(sequence):
        frame = stack.frame(i)
        # the sequence quantises depth to millimetres, so the stack's frames are exact
        np.testing.assert_array_equal(frame.depth, original.depth)
        assert frame.depth.dtype == np.float32
        np.testing.assert_array_equal(frame.rgb, original.rgb)
        np.testing.assert_array_equal(frame.labels, original.labels)
        np.testing.assert_array_equal(frame.T_world_cam, original.T_world_cam)
        assert frame.stamp_ns == original.stamp_ns and frame.frame_id == original.frame_id
        assert frame.intrinsics == original.intrinsics
        assert np.shares_memory(frame.rgb, stack.rgb)  # views, not copies
        frame.validate()


def test_save_load_round_trip(sequence, tmp_path):
    stack = FrameStack.from_frames(sequence, len(sequence))
    stack.save(tmp_path / "frames.npz")
    loaded = FrameStack.load(tmp_path / "frames.npz")
    assert loaded.intrinsics == stack.intrinsics and loaded.frame_id == stack.frame_id
    for name in ("depth_mm", "rgb", "labels", "poses", "stamps_ns"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stack, name))
        assert getattr(loaded, name).dtype == getattr(stack, name).dtype


def test_loading_and_taking_every_frame_costs_memory_linear_in_the_frames(tmp_path):
    # Reading np.load(path)[key][i] per frame decompresses the whole array for each frame and every
    # frame's view keeps its copy alive: N frames cost N times the file. The stack reads each array once.
    n, h, w = 40, 48, 64
    rng = np.random.default_rng(0)
    k = CameraIntrinsics(50.0, 50.0, w / 2, h / 2, w, h)
    stack = FrameStack(k, rng.integers(0, 5000, (n, h, w), dtype=np.uint16), rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8),
                       rng.integers(0, 20, (n, h, w), dtype=np.uint8), np.tile(np.eye(4), (n, 1, 1)), np.arange(n, dtype=np.int64))
    stack.save(tmp_path / "frames.npz")
    tracemalloc.start()
    try:
        loaded = FrameStack.load(tmp_path / "frames.npz")
        frames = [loaded.frame(i) for i in range(n)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(frames) == n
    # the stack itself plus the float32 depth of every frame, with room for the loader's buffers
    assert peak < 3 * (stack.nbytes + n * h * w * 4)


def test_wrong_shapes_and_short_sources_are_named(sequence):
    k = sequence.intrinsics
    with pytest.raises(InvalidFrame, match="rgb has shape"):
        FrameStack(k, np.zeros((2, 24, 32), np.uint16), np.zeros((2, 24, 32), np.uint8), np.zeros((2, 24, 32), np.uint8),
                   np.zeros((2, 4, 4)), np.zeros(2, np.int64))
    with pytest.raises(InvalidFrame, match="got only 4"):
        FrameStack.from_frames(sequence, 6)
