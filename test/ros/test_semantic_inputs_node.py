"""The mapper node with each form of 2D semantics, in process (callbacks called directly):
labels + confidence, per-class probabilities (pixel-major and class-major), bad ones refused
and counted with the map unchanged, and structural labels when no semantic source is set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from test_mapper_node_inputs import FRAME_ID, S, camera, feed_pose, make_node, pose_at  # noqa: F401 - fixture

pytestmark = [pytest.mark.ros]

C = 21


def images(node, stamp_ns: int, **semantics) -> dict:
    from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info
    from ssr_ros.ros.conversions.image import numpy_to_image

    K = camera()
    node.assembler.set_camera_info(intrinsics_to_camera_info(K, stamp_ns, FRAME_ID))
    out = {"depth": numpy_to_image(np.full((K.height, K.width), 2.0, np.float32), "32FC1", stamp_ns, FRAME_ID),
           "color": numpy_to_image(np.full((K.height, K.width, 3), 128, np.uint8), "rgb8", stamp_ns, FRAME_ID)}
    for name, (array, encoding) in semantics.items():
        out[name] = numpy_to_image(array, encoding, stamp_ns, FRAME_ID)
    return out


def one_hot(class_id: int, channels: int = C) -> np.ndarray:
    K = camera()
    probs = np.zeros((K.height, K.width, channels), np.float32)
    probs[..., class_id] = 0.9
    return probs


def map_labels(node) -> set[int]:
    return set(np.unique(node.pipeline.surface_voxels()["labels"]).tolist())


def test_pixel_major_probabilities_label_the_map_and_bad_ones_are_refused(make_node):
    node = make_node(**{"topics.label_probabilities": "/seg/probs"})
    assert "probabilities" in node._input_names and node.pipeline.semantic_source_expected
    feed_pose(node, 1 * S, pose_at(0.0))
    assert node.process_images(images(node, 1 * S, probabilities=(one_hot(7), f"32FC{C}")))
    assert map_labels(node) == {7}
    blocks = node.pipeline.map.num_blocks
    feed_pose(node, 2 * S, pose_at(0.0))
    assert node.process_images(images(node, 2 * S, probabilities=(one_hot(7, 19), "32FC19"))) is False
    assert node.counters["dropped.InconsistentMessage"] == 1
    feed_pose(node, 3 * S, pose_at(0.0))
    assert node.process_images(images(node, 3 * S, probabilities=(np.zeros((24, 32), np.uint16), "mono16"))) is False
    assert node.counters["dropped.UnsupportedEncoding"] == 1
    assert node.counters["frames_integrated"] == 1 and node.pipeline.map.num_blocks == blocks


def test_class_major_probabilities(make_node):
    node = make_node(**{"topics.label_probabilities": "/seg/probs", "probabilities_layout": "chw"})
    feed_pose(node, 1 * S, pose_at(0.0))
    planes = np.ascontiguousarray(np.moveaxis(np.round(one_hot(12) * 255).astype(np.uint8), -1, 0)).reshape(-1, 32)
    assert node.process_images(images(node, 1 * S, probabilities=(planes, "8UC1")))
    assert map_labels(node) == {12}


def test_labels_with_confidence(make_node):
    node = make_node(**{"topics.label_confidence": "/seg/confidence"})
    assert node._input_names == ["depth", "color", "labels", "confidence"]
    K = camera()
    feed_pose(node, 1 * S, pose_at(0.0))
    labels = (np.full((K.height, K.width), 5, np.uint8), "mono8")
    assert node.process_images(images(node, 1 * S, labels=labels,
                                      confidence=(np.full((K.height, K.width), 0.5, np.float32), "32FC1")))
    assert map_labels(node) == {5}
    feed_pose(node, 2 * S, pose_at(0.0))
    bad = (np.full((K.height, K.width), 2.0, np.float32), "32FC1")
    assert node.process_images(images(node, 2 * S, labels=labels, confidence=bad)) is False
    assert node.counters["dropped.InconsistentMessage"] == 1


def test_structural_labels_without_a_semantic_source(make_node):
    node = make_node(**{"topics.labels": ""})
    assert not node.pipeline.semantic_source_expected
    feed_pose(node, 1 * S, pose_at(0.0))
    assert node.process_images(images(node, 1 * S))
    assert node.pipeline.semantic_source == "structure"


def test_frames_integrate_without_labels_while_no_node_publishes_them(make_node):
    # A labels topic is configured by default; without a segmenter running the map must not
    # freeze waiting for label images. Once one publishes, frames wait for their labels again.
    import time
    import uuid

    from sensor_msgs.msg import Image

    topic = f"/seg_{uuid.uuid4().hex[:8]}/labels"
    node = make_node(**{"topics.labels": topic})
    assert node._input_names == ["depth", "color", "labels"]
    queued = []
    node._enqueue = queued.append  # the frames the integration thread would get
    feed_pose(node, 1 * S, pose_at(0.0))
    first = images(node, 1 * S)
    node._route(0, first["depth"])
    node._route(1, first["color"])
    assert len(queued) == 1 and set(queued[0]) == {"depth", "color"}
    assert node.counters["frames_without_semantics"] == 1 and not node.pipeline.semantic_source_expected
    assert node.process_images(queued[0]) and node.counters["frames_integrated"] == 1

    node.create_publisher(Image, topic, 10)  # a segmenter starts
    deadline = time.monotonic() + 10.0
    while not node._semantics_published() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node._semantics_published()
    second = images(node, 2 * S, labels=(np.full((24, 32), 5, np.uint8), "mono8"))
    node._route(0, second["depth"])
    node._route(1, second["color"])
    assert len(queued) == 1  # waits for its labels now
    node._route(2, second["labels"])
    assert len(queued) == 2 and set(queued[1]) == {"depth", "color", "labels"}
    assert node.pipeline.semantic_source_expected
    feed_pose(node, 2 * S, pose_at(0.0))
    assert node.process_images(queued[1])
    assert 5 in map_labels(node)


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_the_segmenter_stage_labels_frames_in_its_own_thread(make_node, tmp_path, kind):
    # the project's small segmenter exported to TorchScript, run by the node at most rate_hz:
    # the frame it takes is integrated with the model's probabilities once segmented, the
    # others with geometry and color only
    import time

    from ssr_ros.completion.weights import load_model
    from ssr_ros.package_files import find_package_file
    from ssr_ros.semantics.segmenter import export_segmenter

    weights = find_package_file("models", "segmenter_small.pt")
    if weights is None:
        pytest.skip("models/segmenter_small.pt is absent")
    if kind == "onnx":
        pytest.importorskip("onnx", reason="onnx is not installed (pip install ssr_ros[onnx])")
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install ssr_ros[onnx])")
    written = export_segmenter(load_model(weights, "cpu", expected_type="segmenter2d"), tmp_path, 24, 32,
                               formats=(kind,))
    node = make_node(**{"segmenter.type": kind, "segmenter.model": str(written[kind]),
                        "segmenter.device": "cpu", "segmenter.rate_hz": 0.01})
    assert node._input_names == ["depth", "color"] and node.pipeline.semantic_source_expected
    node._running = False  # this test drives integration itself
    node._integrator.join(timeout=5)
    for k in (1, 2, 3):
        feed_pose(node, k * S, pose_at(0.0))
        assert node.process_images(images(node, k * S))
    assert node.counters["frames_integrated"] == 2  # frame 1 is with the segmenter; 2 and 3 were not due
    deadline = time.monotonic() + 30.0
    while node.counters["frames_segmented"] == 0 and time.monotonic() < deadline:
        node._integrate_segmented()
        time.sleep(0.01)
    assert node.counters["frames_segmented"] == 1 and node.counters["frames_integrated"] == 3
    assert node.pipeline.semantic_source == "frames"


def test_a_bad_segmenter_model_refuses_to_start(make_node, tmp_path):
    from ssr_ros.errors import SsrError

    with pytest.raises(SsrError, match="segmenter|model"):
        make_node(**{"segmenter.type": "torchscript", "segmenter.model": str(tmp_path / "absent.pt")})
    with pytest.raises(SsrError, match="color"):
        make_node(**{"segmenter.type": "torchscript", "segmenter.model": str(tmp_path / "absent.pt"), "topics.color": ""})


def test_the_voxel_region_service_returns_the_blocks_of_a_box_and_refuses_bad_boxes(make_node):
    msgs = pytest.importorskip("ssr_ros.srv")
    if not hasattr(msgs, "GetVoxelRegion"):
        pytest.skip("the built ssr_ros interfaces predate srv/GetVoxelRegion.srv; rebuild them (scripts/setup_env.sh)")
    from geometry_msgs.msg import Point

    node = make_node(region_max_blocks=300)
    feed_pose(node, 1 * S, pose_at(0.0))
    assert node.process_images(images(node, 1 * S))

    def ask(lo, hi):
        request = msgs.GetVoxelRegion.Request(min=Point(x=lo[0], y=lo[1], z=lo[2]), max=Point(x=hi[0], y=hi[1], z=hi[2]))
        return node._on_region(request, msgs.GetVoxelRegion.Response())

    whole = ask((-1.0, -1.0, 1.0), (1.0, 1.0, 3.0))  # the wall 2 m in front of the camera
    assert whole.success and len(whole.map.chunks) > 0
    assert whole.map.header.frame_id == node._map_grid_frame()
    empty = ask((5.0, 5.0, 5.0), (5.5, 5.5, 5.5))
    assert empty.success and len(empty.map.chunks) == 0
    assert not ask((0.0, 0.0, 0.0), (float("nan"), 1.0, 1.0)).success
    assert not ask((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)).success  # min above max
    too_big = ask((-50.0, -50.0, -5.0), (50.0, 50.0, 5.0))
    assert not too_big.success and "region_max_blocks" in too_big.message


def test_the_object_stage_publishes_the_object_list_periodically(make_node):
    import time

    pytest.importorskip("ssr_ros.msg", reason="interfaces not built")
    from ssr_ros.msg import ObjectList  # noqa: F401 - the stage needs the built message

    node = make_node(**{"objects.period_s": 0.2, "objects.type": "none"})  # instances listed, not refined
    published = []
    node.objects_pub.publish = published.append
    feed_pose(node, 1 * S, pose_at(0.0))
    assert node.process_images(images(node, 1 * S, labels=(np.full((24, 32), 5, np.uint8), "mono8")))
    deadline = time.monotonic() + 30.0
    while not published and time.monotonic() < deadline:
        time.sleep(0.05)
    assert published and node.counters["object_runs"] >= 1
    assert published[-1].header.frame_id == node._map_grid_frame()
    assert node.pipeline.stats()["timings"]["objects"]["count"] >= 1
    assert not make_node()._object_stage  # off by default


def test_rviz_mesh_markers_follow_the_changed_blocks(make_node):
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import Marker, MarkerArray

    node = make_node(marker_max_triangles=40)
    sent = []
    for pub in (node.mesh_pub, node.marker_pub):
        pub.get_subscription_count = lambda: 1  # RViz listens
    node.mesh_pub.publish = lambda msg: None

    def receive(data) -> None:  # the markers go out serialised: read them as RViz's subscription would
        assert isinstance(data, bytes)
        sent.append(deserialize_message(data, MarkerArray))

    node.marker_pub.publish = receive
    feed_pose(node, 1 * S, pose_at(0.0))
    assert node.process_images(images(node, 1 * S))
    node.publish_mesh_update()
    first = sent[-1].markers
    assert first and all(m.action == Marker.ADD and m.type == Marker.TRIANGLE_LIST for m in first)
    assert all(len(m.points) <= 3 * 40 for m in first)  # split at marker_max_triangles
    triangles = sum(len(b.triangles) for b in node.pipeline.block_meshes())
    assert sum(len(m.points) for m in first) == 3 * triangles
    node.publish_mesh_update()  # nothing changed: nothing sent
    assert len(sent) == 1
    from ssr_ros.ros.conversions.image import numpy_to_image

    feed_pose(node, 2 * S, pose_at(0.0))  # a frame that sees only the left part: only its blocks are sent again
    second_frame = images(node, 2 * S)
    depth = np.zeros((24, 32), np.float32)
    depth[:, :6] = 1.9
    second_frame["depth"] = numpy_to_image(depth, "32FC1", 2 * S, FRAME_ID)
    assert node.process_images(second_frame)
    node.publish_mesh_update()
    second = sent[-1].markers
    node.publish_mesh_update(full=True)
    full = sent[-1].markers
    assert 0 < sum(m.action == Marker.ADD for m in second) < len(full) - 1  # not the whole mesh again
    assert full[0].action == Marker.DELETEALL
    triangles = sum(len(b.triangles) for b in node.pipeline.block_meshes())
    assert sum(len(m.points) for m in full[1:]) == 3 * triangles

    # the next full mesh publications rebuild the markers only for a subscriber that joined since
    # (the subscribers there are have every block; a late one gets the latched full array)
    sent.clear()
    node.publish_mesh_update(full=True)
    assert not sent  # nothing changed, nobody new: no markers at all
    feed_pose(node, 3 * S, pose_at(0.0))
    third_frame = images(node, 3 * S)
    third_frame["depth"] = numpy_to_image(depth, "32FC1", 3 * S, FRAME_ID)
    assert node.process_images(third_frame)
    node.publish_mesh_update(full=True)
    assert len(sent) == 1 and all(m.action != Marker.DELETEALL for m in sent[-1].markers)  # the changes only
    assert 0 < sum(m.action == Marker.ADD for m in sent[-1].markers) < len(full) - 1

    class Matched:  # what rclpy's matched event reports
        total_count = 7

    node._on_marker_matched(Matched())  # a late RViz subscribed
    node.publish_mesh_update(full=True)
    rebuilt = sent[-1].markers
    assert rebuilt[0].action == Marker.DELETEALL and sum(len(m.points) for m in rebuilt[1:]) == 3 * triangles
    node.publish_mesh_update(full=True)
    assert sent[-1] is not None and len(sent) == 2  # and not again for the same subscribers
    node._marker_matches_known = False  # an rclpy without the matched event: every full publication rebuilds
    node.publish_mesh_update(full=True)
    assert len(sent) == 3 and sent[-1].markers[0].action == Marker.DELETEALL

    # an update larger than marker_message_mb goes out as several arrays, in order, with the same markers
    whole = sent[-1].markers
    node.settings = dataclasses.replace(node.settings, marker_message_mb=0.002)
    sent.clear()
    node.publish_mesh_update(full=True)
    parts = [m for array in sent for m in array.markers]
    assert len(sent) > 1 and parts[0].action == Marker.DELETEALL and len(parts) == len(whole)
    assert all((a.action, a.points, a.colors) == (b.action, b.points, b.colors) for a, b in zip(parts, whole))
    assert len({m.id for m in parts[1:]}) == len(parts) - 1  # (a full rebuild numbers the markers anew)


def test_instance_images_reach_the_map_and_bad_ones_are_refused(make_node):
    node = make_node(**{"topics.instances": "/seg/instances"})
    assert node._input_names == ["depth", "color", "labels", "instances"]
    K = camera()
    labels = (np.full((K.height, K.width), 5, np.uint8), "mono8")
    ids = np.zeros((K.height, K.width), np.uint16)
    ids[:, : K.width // 2], ids[:, K.width // 2:] = 3, 4
    feed_pose(node, 1 * S, pose_at(0.0))
    assert node.process_images(images(node, 1 * S, labels=labels, instances=(ids, "mono16")))
    evidence = node.pipeline.map.instances
    assert evidence is not None and len(np.unique(evidence.ids)) == 2
    before = evidence.keys.copy()
    feed_pose(node, 2 * S, pose_at(0.0))
    assert node.process_images(images(node, 2 * S, labels=labels, instances=(ids[:, :-1].copy(), "mono16"))) is False
    assert node.counters["dropped.InconsistentMessage"] == 1
    np.testing.assert_array_equal(node.pipeline.map.instances.keys, before)


def test_a_marker_subscription_over_dds_is_seen_by_the_matched_event(make_node, ros_context):
    """The full marker array is rebuilt only for new subscribers: rclpy's matched event must report them."""
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray

    node = make_node()
    assert node._marker_matches_known and node._marker_subscribers_seen == 0
    viewer = rclpy.create_node("rviz_like_viewer", context=ros_context)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    executor = SingleThreadedExecutor(context=ros_context)
    try:
        viewer.create_subscription(MarkerArray, "/ssr_mapper/mesh_markers", lambda msg: None, latched)
        executor.add_node(node)
        executor.add_node(viewer)
        deadline = time.monotonic() + 20.0
        while node._marker_subscribers_seen < 1 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert node._marker_subscribers_seen == 1 and node._markers_need_full()
    finally:
        executor.remove_node(node)
        viewer.destroy_node()
