"""sensor_msgs/Image <-> NumPy: exact round trips over encodings, padding and byte order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import Image

from ssr_ros.errors import InconsistentMessage, UnsupportedEncoding
from ssr_ros.image_encoding import ENCODINGS
from ssr_ros.ros.conversions.image import (
    check_same_size,
    color_image_to_rgb,
    depth_image_to_metres,
    image_to_numpy,
    label_image_to_ids,
    numpy_to_image,
)


def random_image(rng: np.random.Generator, encoding: str, height: int, width: int) -> np.ndarray:
    dtype, channels = ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype == np.float32:
        return rng.normal(0, 1000, size=shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


@settings(max_examples=150, deadline=None)
@given(
    encoding=st.sampled_from(sorted(ENCODINGS)),
    height=st.integers(0, 17),
    width=st.integers(1, 23),
    padding=st.integers(0, 9),
    big_endian=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_is_exact_for_every_encoding_padding_and_byte_order(encoding, height, width, padding, big_endian, seed):
    image = random_image(np.random.default_rng(seed), encoding, height, width)
    dtype, channels = ENCODINGS[encoding]
    step = width * dtype.itemsize * channels + padding
    msg = numpy_to_image(image, encoding, stamp_ns=123_456_789_012, frame_id="cam", step=step, is_bigendian=big_endian)
    assert msg.step == step and len(msg.data) == height * step
    assert msg.header.stamp.sec == 123 and msg.header.stamp.nanosec == 456_789_012
    back = image_to_numpy(msg)
    assert back.dtype == dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def test_big_endian_bytes_are_read_as_big_endian():
    msg = Image(height=1, width=2, encoding="16UC1", is_bigendian=1, step=4)
    msg.data = bytes([0x01, 0x02, 0xFF, 0x00])  # 0x0102 and 0xFF00 in network order
    np.testing.assert_array_equal(image_to_numpy(msg), [[0x0102, 0xFF00]])
    msg.is_bigendian = 0
    np.testing.assert_array_equal(image_to_numpy(msg), [[0x0201, 0x00FF]])


def test_padding_bytes_are_ignored():
    msg = Image(height=2, width=2, encoding="mono8", is_bigendian=0, step=3)
    msg.data = bytes([1, 2, 99, 3, 4, 99])
    np.testing.assert_array_equal(image_to_numpy(msg), [[1, 2], [3, 4]])


def test_depth_16uc1_is_millimetres_and_32fc1_invalid_values_become_zero():
    mm = np.array([[0, 1000, 65535]], dtype=np.uint16)
    np.testing.assert_allclose(depth_image_to_metres(numpy_to_image(mm, "16UC1")), [[0.0, 1.0, 65.535]], rtol=1e-6)
    metres = np.array([[np.nan, np.inf, -1.0, 2.5]], dtype=np.float32)
    np.testing.assert_array_equal(depth_image_to_metres(numpy_to_image(metres, "32FC1")), [[0, 0, 0, 2.5]])


@pytest.mark.parametrize(
    "encoding,pixel,expected",
    [
        ("rgb8", [10, 20, 30], [10, 20, 30]),
        ("bgr8", [30, 20, 10], [10, 20, 30]),
        ("rgba8", [10, 20, 30, 255], [10, 20, 30]),
        ("bgra8", [30, 20, 10, 7], [10, 20, 30]),
    ],
)
def test_color_encodings_give_rgb(encoding, pixel, expected):
    image = np.array([[pixel]], dtype=np.uint8)
    np.testing.assert_array_equal(color_image_to_rgb(numpy_to_image(image, encoding)), [[expected]])


def test_mono8_color_is_replicated_to_three_channels():
    rgb = color_image_to_rgb(numpy_to_image(np.array([[7, 200]], dtype=np.uint8), "mono8"))
    np.testing.assert_array_equal(rgb, [[[7, 7, 7], [200, 200, 200]]])


def test_labels_mono16_keep_large_ids():
    ids = label_image_to_ids(numpy_to_image(np.array([[0, 300, 65535]], dtype=np.uint16), "mono16"))
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [[0, 300, 65535]])


def test_unknown_encoding_is_refused_with_the_encoding_named():
    msg = Image(height=1, width=1, encoding="yuv422", step=2)
    msg.data = bytes(2)
    with pytest.raises(UnsupportedEncoding, match="yuv422"):
        image_to_numpy(msg)


def test_color_decoders_refuse_depth_encodings():
    with pytest.raises(UnsupportedEncoding, match="color encoding '16UC1'"):
        color_image_to_rgb(numpy_to_image(np.zeros((1, 1), np.uint16), "16UC1"))
    with pytest.raises(UnsupportedEncoding, match="depth encoding 'rgb8'"):
        depth_image_to_metres(numpy_to_image(np.zeros((1, 1, 3), np.uint8), "rgb8"))
    with pytest.raises(UnsupportedEncoding, match="label encoding 'rgb8'"):
        label_image_to_ids(numpy_to_image(np.zeros((1, 1, 3), np.uint8), "rgb8"))


def test_step_smaller_than_row_is_refused():
    msg = Image(height=2, width=4, encoding="16UC1", step=6)
    msg.data = bytes(12)
    with pytest.raises(InconsistentMessage, match="step 6 is smaller than"):
        image_to_numpy(msg)


def test_data_length_mismatch_is_refused():
    msg = Image(height=2, width=2, encoding="rgb8", step=6)
    msg.data = bytes(11)
    with pytest.raises(InconsistentMessage, match="11 bytes; expected height \\* step = 2 \\* 6 = 12"):
        image_to_numpy(msg)


def test_encoding_an_array_of_the_wrong_dtype_or_shape_is_refused():
    with pytest.raises(InconsistentMessage, match="dtype float64"):
        numpy_to_image(np.zeros((2, 2)), "16UC1")
    with pytest.raises(InconsistentMessage, match="expected \\(H, W, 3\\)"):
        numpy_to_image(np.zeros((2, 2), np.uint8), "rgb8")


def test_images_of_one_frame_must_have_the_same_size():
    depth = numpy_to_image(np.zeros((4, 6), np.uint16), "16UC1")
    color = numpy_to_image(np.zeros((4, 5, 3), np.uint8), "rgb8")
    with pytest.raises(InconsistentMessage, match="color image is 5x4 but the depth image is 6x4"):
        check_same_size(depth, color, "color image")




@pytest.mark.parametrize("encoding", ["16UC1", "32FC1", "rgb8", "bgr8", "mono8", "mono16", "rgba8", "bgra8"])
def test_matches_cv_bridge_where_installed(encoding):
    bridge_module = pytest.importorskip("cv_bridge", reason="cv_bridge is only present in a ROS 2 installation")
    bridge = bridge_module.CvBridge()
    image = random_image(np.random.default_rng(0), encoding, 5, 7)
    ours = numpy_to_image(image, encoding)
    theirs = bridge.cv2_to_imgmsg(image, encoding=encoding)
    assert bytes(ours.data) == bytes(theirs.data) and ours.step == theirs.step
    np.testing.assert_array_equal(image_to_numpy(theirs), bridge.imgmsg_to_cv2(ours, desired_encoding="passthrough"))
