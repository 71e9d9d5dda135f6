"""Object lists -> visualization_msgs MarkerArray for RViz: one box and one text label per object.

Pure functions of :class:`~ssr_ros.objects.object_list.ObjectRecord` lists; the node (or any
other caller) publishes the result. Box marker ids are ``2 * instance_id`` and label ids
``2 * instance_id + 1`` in namespace ``namespace``; the array starts with a DELETEALL marker so
objects that vanished since the previous array disappear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from geometry_msgs.msg import Quaternion
from visualization_msgs.msg import Marker, MarkerArray

from ssr_ros.objects.object_list import ObjectRecord
from ssr_ros.ros.conversions.marker import control_marker
from ssr_ros.ros.conversions.time import ns_to_stamp

LABEL_HEIGHT = 0.12
"""Text height of the labels, metres."""


def yaw_quaternion(yaw: float) -> Quaternion:
    """Rotation about z by ``yaw`` radians as a unit quaternion."""
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))


def objects_to_marker_array(objects: Sequence[ObjectRecord], class_colors: dict[int, tuple[int, int, int]], frame_id: str,
                            stamp_ns: int = 0, namespace: str = "objects", alpha: float = 0.35) -> MarkerArray:
    """DELETEALL, then per object a CUBE (its oriented box, the class color at ``alpha``; refined
    objects drawn more opaque) and a TEXT_VIEW_FACING label "class #id conf" above it.

    class_colors: class id -> 8-bit RGB (e.g. from the taxonomy); unknown ids are drawn grey.
    """
    stamp = ns_to_stamp(stamp_ns)
    markers = [control_marker(Marker.DELETEALL, frame_id, stamp_ns, namespace)]
    for obj in objects:
        r, g, b = (c / 255.0 for c in class_colors.get(obj.class_id, (128, 128, 128)))
        box = Marker()
        box.header.frame_id = frame_id
        box.header.stamp = stamp
        box.ns = namespace
        box.id = 2 * int(obj.instance_id)
        box.type = Marker.CUBE
        box.action = Marker.ADD
        box.pose.position.x, box.pose.position.y, box.pose.position.z = (float(v) for v in obj.center)
        box.pose.orientation = yaw_quaternion(float(obj.yaw))
        box.scale.x, box.scale.y, box.scale.z = (max(float(v), 1e-3) for v in obj.extents)
        box.color.r, box.color.g, box.color.b = float(r), float(g), float(b)
        box.color.a = float(min(1.0, alpha * (1.6 if obj.refined else 1.0)))
        box.frame_locked = True
        text = Marker()
        text.header.frame_id = frame_id
        text.header.stamp = stamp
        text.ns = namespace
        text.id = 2 * int(obj.instance_id) + 1
        text.type = Marker.TEXT_VIEW_FACING
        text.action = Marker.ADD
        text.pose.position.x, text.pose.position.y = float(obj.center[0]), float(obj.center[1])
        text.pose.position.z = float(obj.center[2]) + float(obj.extents[2]) / 2 + LABEL_HEIGHT
        text.pose.orientation.w = 1.0
        text.scale.z = LABEL_HEIGHT
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        text.text = f"{obj.class_name} #{obj.instance_id} {obj.confidence:.2f}"
        text.frame_locked = True
        markers += [box, text]
    array = MarkerArray()
    array.markers = markers
    return array
