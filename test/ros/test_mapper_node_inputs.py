"""The mapper node's handling of awkward input, in process: messages are handed to its
callbacks directly (no transport), so each case is exact and quick.

Cases: two frames with one stamp (each frame fused with its own pose or not at all, every
drop counted), the clock jumping back (mapping goes on), depth entirely out of range, and
save_map without a path.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ros]

S = 1_000_000_000
FRAME_ID = "camera_color_optical_frame"


@pytest.fixture
def make_node(node_factory):
    defaults = {"completion.type": "none", "device": "cpu", "pose_wait_s": 0.0, "warn_throttle_s": 0.0,
                "time_jump_threshold_s": 1.0}
    return lambda **overrides: node_factory(defaults, **overrides)


def camera():
    from ssr_ros.geometry import CameraIntrinsics

    return CameraIntrinsics(fx=40.0, fy=40.0, cx=15.5, cy=11.5, width=32, height=24)


def pose_at(x: float) -> np.ndarray:
    T = np.eye(4)
    T[0, 3] = x
    return T


def feed_pose(node, stamp_ns: int, T: np.ndarray) -> None:
    from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped

    node._on_pose(matrix_to_pose_stamped(T, "map", stamp_ns))


def frame_images(node, stamp_ns: int, depth_m: float = 2.0) -> dict:
    """A depth-only frame of a wall ``depth_m`` metres ahead (camera_info given to the node)."""
    from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info
    from ssr_ros.ros.conversions.image import numpy_to_image

    K = camera()
    node.assembler.set_camera_info(intrinsics_to_camera_info(K, stamp_ns, FRAME_ID))
    depth = np.full((K.height, K.width), depth_m, np.float32)
    images = {"depth": numpy_to_image(depth, "32FC1", stamp_ns, FRAME_ID)}
    if "color" in node._input_names:
        images["color"] = numpy_to_image(np.full((K.height, K.width, 3), 128, np.uint8), "rgb8", stamp_ns, FRAME_ID)
    if "labels" in node._input_names:
        images["labels"] = numpy_to_image(np.ones((K.height, K.width), np.uint8), "mono8", stamp_ns, FRAME_ID)
    return images


def test_a_frame_is_never_fused_with_the_pose_of_another_frame_with_the_same_stamp(make_node):
    """Frames A and B sent back to back with one stamp: B's pose arrives before A is fused.
    Neither pose can be trusted for that stamp, so both frames are dropped and counted."""
    node = make_node()
    feed_pose(node, 5 * S, pose_at(0.0))  # A
    feed_pose(node, 5 * S, pose_at(3.0))  # B
    assert node.counters["poses_conflicting"] == 1
    assert node.process_images(frame_images(node, 5 * S)) is False
    assert node.process_images(frame_images(node, 5 * S)) is False
    assert node.counters["dropped.PoseConflict"] == 2
    assert node.counters["frames_integrated"] == 0 and node.pipeline.map.num_blocks == 0


def test_after_a_frame_is_fused_a_second_one_with_its_stamp_is_dropped_and_counted(make_node):
    node = make_node()
    feed_pose(node, 5 * S, pose_at(0.0))
    assert node.process_images(frame_images(node, 5 * S))
    feed_pose(node, 5 * S, pose_at(3.0))
    assert node.process_images(frame_images(node, 5 * S)) is False
    assert node.counters["frames_integrated"] == 1
    assert node.counters["dropped.stamp_not_increasing"] == 1
    assert node.counters["poses_conflicting"] == 1


@pytest.mark.parametrize("on_time_jump", ["continue", "reset"])
def test_mapping_goes_on_after_the_clock_jumps_back(make_node, on_time_jump):
    """A bag played in a loop: after the last frame the stamps start again from the beginning."""
    node = make_node(on_time_jump=on_time_jump)
    for k in range(3):
        feed_pose(node, (100 + k) * S, pose_at(0.1 * k))
        assert node.process_images(frame_images(node, (100 + k) * S))
    blocks = node.pipeline.map.num_blocks
    assert blocks > 0
    feed_pose(node, 101 * S + S // 2, pose_at(0.1))  # in flight: late, but not a jump
    assert node.process_images(frame_images(node, 101 * S)) is False
    assert node.counters["dropped.stamp_not_increasing"] == 1
    for k in range(3):  # the loop's second pass, shifted so that a wrong pose would show
        feed_pose(node, (1 + k) * S, pose_at(5.0 + 0.1 * k))
        assert node.process_images(frame_images(node, (1 + k) * S)), dict(node.counters)
    assert node.counters["time_jumps"] == 1
    assert node.poses.time_jumps == 1
    assert node.counters["frames_integrated"] == 6
    if on_time_jump == "reset":
        assert node.pipeline.map.frames_integrated == 3
    else:
        assert node.pipeline.map.num_blocks > blocks


def test_a_depth_image_entirely_out_of_range_is_dropped_not_counted_as_integrated(make_node):
    node = make_node()
    feed_pose(node, 5 * S, pose_at(0.0))
    max_depth = node.pipeline.config.map.max_depth
    assert node.process_images(frame_images(node, 5 * S, depth_m=max_depth + 1.0)) is False
    assert node.counters["dropped.DepthOutOfRange"] == 1
    assert node.counters["frames_integrated"] == 0 and node.pipeline.map.num_blocks == 0


def test_save_map_without_a_path_is_refused_and_writes_nothing(make_node, tmp_path):
    from ssr_ros.srv import SaveMap

    node = make_node()
    feed_pose(node, 5 * S, pose_at(0.0))
    assert node.process_images(frame_images(node, 5 * S))
    for path in ("", "  "):
        response = node._on_save(SaveMap.Request(path=path, formats=[]), SaveMap.Response())
        assert not response.success and "needs a path" in response.message
    assert list(tmp_path.iterdir()) == []
    response = node._on_save(SaveMap.Request(path="saved", formats=["map"]), SaveMap.Response())
    assert response.success, response.message
    assert str(tmp_path / "saved") in response.message
    assert response.files == [str(tmp_path / "saved" / "map.ssrmap")]



@pytest.mark.parametrize("queue_size", [None, 2])
def test_frames_wait_through_half_a_second_of_output_work_at_30_hz(make_node, queue_size):
    """An output holding the map (a mesh update of 640x480 frames takes ~0.5 s) while 15 frames
    (half a second at 30 Hz) arrive: with the default queue they wait and are all fused; a queue of
    two drops most of them."""
    import time

    node = make_node(**({} if queue_size is None else {"frame_queue_size": queue_size}))
    frames = 15
    with node.pipeline.lock:  # what an output holds while it copies the map
        for k in range(1, frames + 1):
            feed_pose(node, k * S, pose_at(0.0))
            node._enqueue(frame_images(node, k * S))
        time.sleep(0.3)  # the integration thread has taken a frame and waits for the map
    deadline = time.monotonic() + 20.0
    while (node.counters["frames_integrated"] + node.counters["dropped.queue_overflow"] < frames
           and time.monotonic() < deadline):
        time.sleep(0.05)
    if queue_size is None:
        assert node.counters["frames_integrated"] == frames and node.counters["dropped.queue_overflow"] == 0
    else:
        assert node.counters["dropped.queue_overflow"] >= frames - queue_size - 1
        assert node.counters["frames_integrated"] == frames - node.counters["dropped.queue_overflow"]
