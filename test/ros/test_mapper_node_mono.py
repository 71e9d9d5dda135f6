"""The mapper node in monocular mode (``input_mode: rgb``), in process: messages are handed to its
callbacks directly. No depth subscription; color-only frames are fused with predicted depth; bad
input (no camera_info, no pose, wrong encoding) is dropped and counted as in rgbd mode; a bad
``input_mode`` is refused."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ros]

S = 1_000_000_000
FRAME_ID = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def mono_weights(tmp_path_factory):
    import torch

    from ssr_ros.completion.weights import save_model
    from ssr_ros.mono.network import MonoDepthNet, MonoNetConfig

    torch.manual_seed(0)
    return str(save_model(MonoDepthNet(MonoNetConfig(base_width=4, levels=2, input_width=32, input_height=32)),
                          tmp_path_factory.mktemp("w") / "mono.pt"))


@pytest.fixture
def make_node(node_factory, mono_weights):
    defaults = {"completion.type": "none", "device": "cpu", "pose_wait_s": 0.0, "warn_throttle_s": 0.0,
                "input_mode": "rgb", "mono.weights": mono_weights, "mono.device": "cpu",
                "mono.max_relative_uncertainty": 10.0, "mono.key_frame_translation_m": 0.05, "topics.labels": ""}
    return lambda **overrides: node_factory(defaults, **overrides)


def give_camera_info(node, stamp_ns: int) -> None:
    from ssr_ros.geometry import CameraIntrinsics
    from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info

    K = CameraIntrinsics(fx=30.0, fy=30.0, cx=15.5, cy=11.5, width=32, height=24)
    node.assembler.set_camera_info(intrinsics_to_camera_info(K, stamp_ns, FRAME_ID))


def feed_pose(node, stamp_ns: int, x: float) -> None:
    from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped

    T = np.eye(4)
    T[0, 3] = x
    node._on_pose(matrix_to_pose_stamped(T, "map", stamp_ns))


def color(stamp_ns: int, encoding: str = "rgb8") -> dict:
    from ssr_ros.ros.conversions.image import numpy_to_image

    rng = np.random.default_rng(stamp_ns % 1000)
    channels = {"rgb8": 3, "mono16": 1}[encoding]
    pixels = (rng.random((24, 32, channels)) * 255).astype(np.uint8 if encoding == "rgb8" else np.uint16)
    return {"color": numpy_to_image(pixels if channels == 3 else pixels[..., 0], encoding, stamp_ns, FRAME_ID)}


def test_rgb_mode_fuses_key_frames_from_color_alone(make_node):
    node = make_node()
    assert node._input_names == ["color"]  # the depth topic is not subscribed
    give_camera_info(node, 1 * S)
    for k, x in enumerate([0.0, 0.01, 0.1]):  # the second is too close to the first to be a key frame
        feed_pose(node, (1 + k) * S, x)
    assert node.process_images(color(1 * S))
    assert node.process_images(color(2 * S)) is False
    assert node.process_images(color(3 * S))
    assert node.counters["frames_integrated"] == 2 and node.counters["frames_not_key"] == 1
    assert not any(key.startswith("dropped.") for key in node.counters)
    assert node.pipeline.map.num_blocks > 0
    assert node.pipeline.stats()["mono"]["key_frames"] == 2


def test_rgb_mode_drops_and_counts_bad_input_like_rgbd_mode(make_node):
    node = make_node()
    feed_pose(node, 1 * S, 0.0)
    assert node.process_images(color(1 * S)) is False  # no camera_info yet
    assert node.counters["dropped.InvalidIntrinsics"] == 1
    give_camera_info(node, 2 * S)
    assert node.process_images(color(50 * S)) is False  # no pose near this stamp
    assert node.counters["dropped.PoseUnavailable"] == 1
    feed_pose(node, 3 * S, 0.0)
    assert node.process_images(color(3 * S, "mono16")) is False  # not a color encoding
    assert node.counters["dropped.UnsupportedEncoding"] == 1
    assert node.counters["frames_integrated"] == 0 and node.pipeline.map.num_blocks == 0
    feed_pose(node, 4 * S, 0.0)
    assert node.process_images(color(4 * S))  # and the node goes on


def test_a_bad_input_mode_or_rgb_mode_without_a_color_topic_is_refused(make_node):
    from ssr_ros.errors import ConfigError

    with pytest.raises(ConfigError, match="input_mode"):
        make_node(input_mode="stereo")
    with pytest.raises(ConfigError, match="topics.color"):
        make_node(**{"topics.color": ""})
