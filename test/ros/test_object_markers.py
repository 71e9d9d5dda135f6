"""Object lists -> RViz box and label markers, and <-> ssr_ros/ObjectList messages."""

from __future__ import annotations

import math

import pytest
from visualization_msgs.msg import Marker

from ssr_ros.objects.object_list import ObjectRecord
from ssr_ros.ros.conversions.object_markers import objects_to_marker_array
from ssr_ros.taxonomy import ClassTaxonomy

OBJECTS = [
    ObjectRecord(1, 5, "chair", (1.0, 2.0, 0.45), math.pi / 2, (0.5, 0.45, 0.9), 0.8, True, 0.9, 120, 100, 300),
    ObjectRecord(3, 7, "table", (2.0, 1.0, 0.37), 0.0, (1.2, 0.7, 0.75), 0.6, False, 0.0, 200, 200, 0),
]


def test_one_box_and_one_label_per_object_after_a_delete_all():
    array = objects_to_marker_array(OBJECTS, {5: (188, 189, 34)}, "map", stamp_ns=1_500_000_000)
    markers = array.markers
    assert markers[0].action == Marker.DELETEALL and len(markers) == 5
    box, text = markers[1], markers[2]
    assert box.type == Marker.CUBE and box.id == 2 and text.type == Marker.TEXT_VIEW_FACING and text.id == 3
    assert box.header.frame_id == "map" and box.header.stamp.sec == 1 and box.header.stamp.nanosec == 500_000_000
    assert (box.pose.position.x, box.pose.position.y, box.pose.position.z) == (1.0, 2.0, 0.45)
    # yaw 90 degrees about z
    q = box.pose.orientation
    assert q.x == 0.0 and q.y == 0.0 and q.z == pytest.approx(math.sqrt(0.5)) and q.w == pytest.approx(math.sqrt(0.5))
    assert (box.scale.x, box.scale.y, box.scale.z) == pytest.approx((0.5, 0.45, 0.9))
    assert (box.color.r, box.color.g, box.color.b) == pytest.approx((188 / 255, 189 / 255, 34 / 255))
    assert text.text == "chair #1 0.80" and text.pose.position.z == pytest.approx(0.45 + 0.45 + 0.12)
    # unknown class colour: grey; unrefined boxes fainter than refined ones
    table_box = markers[3]
    assert table_box.id == 6 and table_box.color.r == pytest.approx(128 / 255)
    assert table_box.color.a < box.color.a


def test_object_list_message_round_trip():
    import ssr_ros.msg as msgs

    if not hasattr(msgs, "ObjectList"):
        pytest.skip("the built ssr_ros interfaces predate msg/ObjectList.msg; rebuild them (scripts/setup_env.sh)")
    from ssr_ros.ros.conversions.object_list import msg_to_objects, objects_to_msg

    taxonomy = ClassTaxonomy.load()
    from rclpy.serialization import deserialize_message, serialize_message

    msg = objects_to_msg(OBJECTS, taxonomy, "map", 42)
    msg = deserialize_message(serialize_message(msg), msgs.ObjectList)  # through the generated type support
    back, tax, frame, stamp = msg_to_objects(msg)
    assert frame == "map" and stamp == 42 and tax.names == taxonomy.names
    for a, b in zip(OBJECTS, back):
        assert (a.instance_id, a.class_id, a.class_name, a.refined, a.voxels, a.observed_voxels) == \
               (b.instance_id, b.class_id, b.class_name, b.refined, b.voxels, b.observed_voxels)
        assert b.center == pytest.approx(a.center) and b.extents == pytest.approx(a.extents)
        assert b.yaw == pytest.approx(a.yaw, abs=1e-6) and b.confidence == pytest.approx(a.confidence)
