"""Object lists <-> ``ssr_ros/ObjectList`` messages (needs the package's generated interfaces)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ssr_ros.msg import ObjectInstance, ObjectList
from ssr_ros.objects.object_list import ObjectRecord
from ssr_ros.ros.conversions.object_markers import yaw_quaternion
from ssr_ros.ros.conversions.semantic_map import msgs_to_taxonomy, taxonomy_to_msgs
from ssr_ros.ros.conversions.time import ns_to_stamp, stamp_to_ns
from ssr_ros.taxonomy import ClassTaxonomy


def objects_to_msg(objects: Sequence[ObjectRecord], taxonomy: ClassTaxonomy, frame_id: str, stamp_ns: int = 0) -> ObjectList:
    """An ObjectList of ``objects`` (map frame ``frame_id``) with the taxonomy attached."""
    msg = ObjectList()
    msg.header.frame_id = frame_id
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.classes = taxonomy_to_msgs(taxonomy)
    for obj in objects:
        item = ObjectInstance()
        item.instance_id = int(obj.instance_id)
        item.class_id = int(obj.class_id)
        item.class_name = obj.class_name
        item.pose.position.x, item.pose.position.y, item.pose.position.z = (float(v) for v in obj.center)
        item.pose.orientation = yaw_quaternion(float(obj.yaw))
        item.extents.x, item.extents.y, item.extents.z = (float(v) for v in obj.extents)
        item.confidence = float(obj.confidence)
        item.refined = bool(obj.refined)
        item.fit = float(obj.fit)
        item.num_voxels = int(obj.voxels)
        item.num_observed_voxels = int(obj.observed_voxels)
        msg.objects.append(item)
    return msg


def msg_to_objects(msg: ObjectList) -> tuple[list[ObjectRecord], ClassTaxonomy, str, int]:
    """(objects, taxonomy, frame_id, stamp_ns) of an ObjectList."""
    out = []
    for item in msg.objects:
        q = item.pose.orientation
        yaw = 2 * math.atan2(q.z, q.w)
        yaw = math.remainder(yaw, 2 * math.pi)
        p = item.pose.position
        out.append(ObjectRecord(int(item.instance_id), int(item.class_id), item.class_name, (p.x, p.y, p.z), yaw,
                                (item.extents.x, item.extents.y, item.extents.z), float(item.confidence), bool(item.refined),
                                float(item.fit), int(item.num_voxels), int(item.num_observed_voxels)))
    return out, msgs_to_taxonomy(list(msg.classes)), msg.header.frame_id, stamp_to_ns(msg.header.stamp)
