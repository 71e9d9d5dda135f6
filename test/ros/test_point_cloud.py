"""Semantic PointCloud2: exact round trips, RViz rgb packing, and a general reader."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import PointCloud2, PointField

from ssr_ros.errors import InconsistentMessage
from ssr_ros.ros.conversions.arrays import to_array
from ssr_ros.ros.conversions.point_cloud import (
    msg_to_semantic_cloud,
    pack_rgb,
    point_cloud_to_structured,
    semantic_cloud_to_msg,
    unpack_rgb,
)


def random_cloud(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "points": rng.uniform(-50, 50, (n, 3)).astype(np.float32),
        "colors": rng.integers(0, 256, (n, 3)).astype(np.uint8),
        "labels": rng.integers(0, 65536, n),
        "confidence": rng.uniform(0, 1, n).astype(np.float32),
        "observed": rng.integers(0, 2, n).astype(bool),
    }


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300))
def test_semantic_cloud_round_trip_is_exact(seed, n):
    cloud = random_cloud(seed, n)
    msg = semantic_cloud_to_msg(**cloud, frame_id="map", stamp_ns=5)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, n, 24, 24 * n)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb", "confidence", "label", "observed"]
    back = msg_to_semantic_cloud(msg)
    for key, values in cloud.items():
        np.testing.assert_array_equal(back[key], values, err_msg=key)


def test_rgb_field_uses_the_rviz_packing():
    colors = np.array([[255, 0, 0], [1, 2, 3]], dtype=np.uint8)
    packed = pack_rgb(colors)
    assert packed.tolist() == [0xFF0000, 0x010203]
    msg = semantic_cloud_to_msg(np.zeros((2, 3)), colors, np.zeros(2), np.zeros(2), np.ones(2), "map")
    raw = point_cloud_to_structured(msg)["rgb"]  # FLOAT32 field holding the bits
    assert raw.dtype.kind == "f"
    assert raw.view(np.uint32).tolist() == [0xFF0000, 0x010203]
    np.testing.assert_array_equal(unpack_rgb(raw), colors)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), height=st.integers(1, 4), width=st.integers(1, 20),
    point_pad=st.integers(0, 8), row_pad=st.integers(0, 16), big_endian=st.booleans(),
)
def test_reader_handles_padding_organised_clouds_and_byte_order(seed, height, width, point_pad, row_pad, big_endian):
    rng = np.random.default_rng(seed)
    order = ">" if big_endian else "<"
    point_step = 14 + point_pad
    dtype = np.dtype({"names": ["x", "intensity", "ring"], "formats": [order + "f8", order + "f4", order + "u2"],
                      "offsets": [0, 8, 12], "itemsize": point_step})
    values = np.zeros((height, width), dtype=dtype)
    values["x"] = rng.normal(size=(height, width))
    values["intensity"] = rng.normal(size=(height, width))
    values["ring"] = rng.integers(0, 65536, (height, width))
    row_step = point_step * width + row_pad
    rows = np.zeros((height, row_step), dtype=np.uint8)
    rows[:, : point_step * width] = values.view(np.uint8).reshape(height, -1)
    msg = PointCloud2(height=height, width=width, is_bigendian=big_endian, point_step=point_step, row_step=row_step)
    msg.fields = [
        PointField(name="x", offset=0, datatype=PointField.FLOAT64, count=1),
        PointField(name="intensity", offset=8, datatype=PointField.FLOAT32, count=1),
        PointField(name="ring", offset=12, datatype=PointField.UINT16, count=1),
    ]
    msg.data = to_array(rows, np.uint8)
    out = point_cloud_to_structured(msg)
    for name in ("x", "intensity", "ring"):
        np.testing.assert_array_equal(out[name], values[name].reshape(-1))


def test_missing_semantic_field_is_named():
    msg = semantic_cloud_to_msg(**random_cloud(0, 3), frame_id="map")
    msg.fields = [f for f in msg.fields if f.name != "label"]
    with pytest.raises(InconsistentMessage, match="lacks field\\(s\\) \\['label'\\]"):
        msg_to_semantic_cloud(msg)


def test_inconsistent_layouts_are_refused():
    msg = semantic_cloud_to_msg(**random_cloud(0, 3), frame_id="map")
    msg.row_step = 10
    with pytest.raises(InconsistentMessage, match="row_step 10"):
        point_cloud_to_structured(msg)
    msg = semantic_cloud_to_msg(**random_cloud(0, 3), frame_id="map")
    msg.data = msg.data[:-1]
    with pytest.raises(InconsistentMessage, match="71 bytes; expected row_step \\* height = 72"):
        point_cloud_to_structured(msg)
    msg = semantic_cloud_to_msg(**random_cloud(0, 3), frame_id="map")
    msg.fields[0].offset = 22
    with pytest.raises(InconsistentMessage, match="does not fit point_step 24"):
        point_cloud_to_structured(msg)


def test_bad_inputs_to_the_writer_are_refused():
    cloud = random_cloud(0, 4)
    with pytest.raises(InconsistentMessage, match="labels must have shape \\(4,\\)"):
        semantic_cloud_to_msg(**{**cloud, "labels": np.zeros(3)}, frame_id="map")
    cloud["points"][1, 2] = np.nan
    with pytest.raises(InconsistentMessage, match="NaN or Inf"):
        semantic_cloud_to_msg(**cloud, frame_id="map")
