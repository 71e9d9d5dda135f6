"""Messages cross real DDS to another process and back unchanged (Fast DDS on loopback)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from ssr_ros.msg import SemanticMesh, SemanticVoxelMap
from ssr_ros.ros.conversions.image import image_to_numpy, numpy_to_image
from ssr_ros.ros.conversions.marker import marker_to_mesh, mesh_to_marker, mesh_to_marker_array
from ssr_ros.ros.conversions.point_cloud import msg_to_semantic_cloud, semantic_cloud_to_msg
from ssr_ros.ros.conversions.semantic_map import VoxelBox, boxes_to_map_msg, map_msg_to_boxes
from ssr_ros.ros.conversions.semantic_mesh import MeshBlockArrays, MeshUpdateArrays, msg_to_update, update_to_msg
from ssr_ros.srv import LoadMap, ResetMap, SaveMap
from ssr_ros.taxonomy import ClassTaxonomy

pytestmark = pytest.mark.ros

TOPICS = {
    "image": (Image, "sensor_msgs/msg/Image"),
    "cloud": (PointCloud2, "sensor_msgs/msg/PointCloud2"),
    "marker": (Marker, "visualization_msgs/msg/Marker"),
    "markers": (MarkerArray, "visualization_msgs/msg/MarkerArray"),
    "voxel_map": (SemanticVoxelMap, "ssr_ros/msg/SemanticVoxelMap"),
    "mesh": (SemanticMesh, "ssr_ros/msg/SemanticMesh"),
}
TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def echo(ros_context):
    """The echo process, plus a local node with a publisher and a subscription per topic."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("echo_node.py"))]
        + [f"{name}={spec}" for name, (_, spec) in TOPICS.items()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    node = rclpy.create_node("ssr_dds_test", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    received: dict[str, list] = {name: [] for name in TOPICS}
    publishers = {}
    for name, (msg_type, _) in TOPICS.items():
        publishers[name] = node.create_publisher(msg_type, f"/echo_in/{name}", qos)
        node.create_subscription(msg_type, f"/echo_out/{name}", received[name].append, qos)
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and not all(
        publishers[n].get_subscription_count() and node.count_publishers(f"/echo_out/{n}") for n in TOPICS
    ):
        executor.spin_once(timeout_sec=0.1)

    def round_trip(name, msg):
        received[name].clear()
        publishers[name].publish(msg)
        end = time.monotonic() + TIMEOUT_S
        while not received[name] and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert received[name], f"no echo on /echo_out/{name} within {TIMEOUT_S} s"
        return received[name][0]

    def call(service_type, name, request):
        client = node.create_client(service_type, name)
        assert client.wait_for_service(timeout_sec=TIMEOUT_S), f"service {name} not available"
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=TIMEOUT_S)
        assert future.done(), f"no response from {name}"
        return future.result()

    yield round_trip, call
    process.stdin.close()
    process.wait(timeout=10)
    executor.shutdown()
    node.destroy_node()


def test_padded_big_endian_depth_and_color_images_survive_dds(echo):
    round_trip, _ = echo
    rng = np.random.default_rng(0)
    depth = rng.integers(0, 65535, (480, 640)).astype(np.uint16)
    back = round_trip("image", numpy_to_image(depth, "16UC1", 77, "camera", step=1300, is_bigendian=True))
    assert (back.step, back.is_bigendian, back.header.frame_id) == (1300, 1, "camera")
    np.testing.assert_array_equal(image_to_numpy(back), depth)
    color = rng.integers(0, 256, (480, 640, 3)).astype(np.uint8)
    np.testing.assert_array_equal(image_to_numpy(round_trip("image", numpy_to_image(color, "bgr8"))), color)


def test_semantic_point_cloud_survives_dds(echo):
    round_trip, _ = echo
    rng = np.random.default_rng(1)
    n = 20_000
    cloud = {
        "points": rng.uniform(-10, 10, (n, 3)).astype(np.float32),
        "colors": rng.integers(0, 256, (n, 3)).astype(np.uint8),
        "labels": rng.integers(0, 21, n),
        "confidence": rng.uniform(0, 1, n).astype(np.float32),
        "observed": rng.integers(0, 2, n).astype(bool),
    }
    back = msg_to_semantic_cloud(round_trip("cloud", semantic_cloud_to_msg(**cloud, frame_id="map")))
    for key in cloud:
        np.testing.assert_array_equal(back[key], cloud[key])


def test_mesh_markers_survive_dds(echo):
    round_trip, _ = echo
    rng = np.random.default_rng(2)
    vertices = rng.uniform(-2, 2, (300, 3))
    triangles = rng.integers(0, 300, (500, 3))
    colors = rng.integers(0, 256, (300, 3)).astype(np.uint8)
    corners, corner_colors = marker_to_mesh(round_trip("marker", mesh_to_marker(vertices, triangles, colors, "map")))
    np.testing.assert_allclose(corners, vertices[triangles.reshape(-1)])
    np.testing.assert_array_equal(corner_colors, colors[triangles.reshape(-1)])
    array = round_trip("markers", mesh_to_marker_array(vertices, triangles, colors, "map", max_triangles=128))
    assert [m.action for m in array.markers] == [Marker.DELETEALL] + [Marker.ADD] * 4
    assert sum(len(m.points) for m in array.markers) == 1500


def test_semantic_voxel_map_survives_dds(echo):
    round_trip, _ = echo
    rng = np.random.default_rng(3)
    boxes = []
    for size in [(16, 16, 16), (8, 4, 2)]:
        boxes.append(VoxelBox(
            origin=rng.integers(-50, 50, 3) * 0.05,
            tsdf=rng.uniform(-0.2, 0.2, size).astype(np.float32),
            weight=rng.uniform(0, 30, size).astype(np.float32),
            color=rng.integers(0, 256, size + (3,)).astype(np.uint8),
            label=rng.integers(0, 21, size).astype(np.uint16),
            confidence=rng.uniform(0, 1, size).astype(np.float32),
            flags=rng.integers(0, 8, size).astype(np.uint8),
        ))
    taxonomy = ClassTaxonomy.load()
    back = map_msg_to_boxes(round_trip("voxel_map", boxes_to_map_msg(boxes, 0.05, 0.2, taxonomy, "map", 99)))
    assert back["taxonomy"].classes == taxonomy.classes and back["stamp_ns"] == 99
    for ours, theirs in zip(boxes, back["boxes"]):
        for name in ("origin", "tsdf", "weight", "color", "label", "confidence", "flags"):
            np.testing.assert_array_equal(getattr(theirs, name), getattr(ours, name), err_msg=name)


def test_incremental_semantic_mesh_survives_dds(echo):
    round_trip, _ = echo
    rng = np.random.default_rng(4)
    blocks = [
        MeshBlockArrays(np.array([i, -i, 2], np.int32), rng.uniform(0, 1, (50, 3)).astype(np.float32),
                        rng.integers(0, 50, (80, 3)).astype(np.uint32), rng.integers(0, 256, (50, 3)).astype(np.uint8),
                        rng.integers(0, 21, 50).astype(np.uint16), rng.uniform(0, 1, 50).astype(np.float32),
                        rng.integers(0, 3, 50).astype(np.uint8))
        for i in range(3)
    ]
    update = MeshUpdateArrays(0.4, blocks, np.array([[9, 9, 9]], np.int32), clear_all=True)
    back, frame_id, _ = msg_to_update(round_trip("mesh", update_to_msg(update, "map", 5)))
    assert frame_id == "map" and back.clear_all and back.cleared_blocks.tolist() == [[9, 9, 9]]
    for ours, theirs in zip(blocks, back.blocks):
        for name in ("index", "vertices", "triangles", "colors", "labels", "confidence", "flags"):
            np.testing.assert_array_equal(getattr(theirs, name), getattr(ours, name), err_msg=name)


def test_map_services_cross_dds(echo):
    _, call = echo
    response = call(SaveMap, "/echo/save_map", SaveMap.Request(path="/tmp/x", formats=["map", "mesh"]))
    assert response.success and list(response.files) == ["/tmp/x/map", "/tmp/x/mesh"]
    response = call(LoadMap, "/echo/load_map", LoadMap.Request(path="/nowhere"))
    assert not response.success and response.message == "no map at /nowhere"
    assert call(ResetMap, "/echo/reset_map", ResetMap.Request()).message == "cleared"
