"""The mapper node as users run it: a separate process fed a generated bag over real DDS.

One node process serves the whole module: a synthetic furnished room is written to a
rosbag2 file, replayed into the node, and what comes out (incremental mesh, voxel cloud,
voxel map, occupancy grid, diagnostics, saved files) is checked against the scene's exact
ground truth. Bad frames are then interleaved and must be dropped, counted, and leave the
map bit-for-bit unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from scipy.spatial import cKDTree
from sensor_msgs.msg import CameraInfo, Image

from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS, write_bag
from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, generate_scene
from ssr_ros.ros.bag_player import play_bag
from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info
from ssr_ros.ros.conversions.image import numpy_to_image
from ssr_ros.ros.conversions.point_cloud import msg_to_semantic_cloud
from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped
from ssr_ros.ros.conversions.semantic_map import FLAG_OBSERVED, FLAG_PREDICTED, map_msg_to_boxes
from ssr_ros.ros.mapper_client import MapperProcess
from ssr_ros.srv import LoadMap, ResetMap, SaveMap
from std_srvs.srv import Trigger

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NUM_FRAMES = 24


class NodeUnderTest(MapperProcess):
    """The node process, plus publishers to feed it single frames."""

    def __init__(self, context, tmp: Path, scene, frames, weights: Path):
        super().__init__(context, {
            "completion.type": "ssr_unet", "completion.weights": str(weights), "completion.chunk_size": 16,
            "completion.overlap": 4, "scheduler.period_s": 3600.0, "scheduler.radius": 20.0,
            "scheduler.max_chunks_per_run": 64, "sensor_qos": "reliable", "frame_queue_size": 100,
            "sync_queue_size": 100, "pose_wait_s": 5.0, "mesh_period_s": 0.5, "voxel_period_s": 1.0, "warn_throttle_s": 0.0,
            "device": "cpu", "completion.device": "cpu",
        }, client_name="mapper_test_client")
        self.tmp, self.scene, self.frames = tmp, scene, frames
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = {
            "color": self.node.create_publisher(Image, DEFAULT_TOPICS.color, qos),
            "depth": self.node.create_publisher(Image, DEFAULT_TOPICS.depth, qos),
            "labels": self.node.create_publisher(Image, DEFAULT_TOPICS.labels, qos),
            "info": self.node.create_publisher(CameraInfo, DEFAULT_TOPICS.camera_info, qos),
            "pose": self.node.create_publisher(PoseStamped, DEFAULT_TOPICS.pose, qos),
        }

    def publish_frame(self, frame, depth=None, color=None, stamp_ns=None, labels=True, depth_encoding="16UC1",
                      color_encoding="rgb8", pose=True, info=True, depth_msg=None):
        stamp = frame.stamp_ns if stamp_ns is None else stamp_ns
        frame_id = "camera_color_optical_frame"
        if info:
            self.pub["info"].publish(intrinsics_to_camera_info(frame.intrinsics, stamp, frame_id))
        if pose:
            self.pub["pose"].publish(matrix_to_pose_stamped(frame.T_world_cam, "map", stamp))
        if depth is None:
            depth = np.round(frame.depth * 1000).astype(np.uint16)
        color = frame.rgb if color is None else color
        if depth_msg is None:
            depth_msg = numpy_to_image(depth, depth_encoding, stamp, frame_id)
        self.pub["depth"].publish(depth_msg)
        self.pub["color"].publish(numpy_to_image(color, color_encoding, stamp, frame_id))
        if labels:
            self.pub["labels"].publish(numpy_to_image(frame.labels.astype(np.uint8), "mono8", stamp, frame_id))


def map_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every stored array of a saved map (voxel layers, block coordinates, hash)."""
    from ssr_ros.map import SemanticTSDF
    from ssr_ros.map.map_file import _arrays

    return _arrays(SemanticTSDF.load(path))


def gt_surface_samples(scene, count: int = 300_000):
    """Dense points on the scene's true surface and the class of each (nearest GT vertex)."""
    from ssr_ros.evaluation.mesh import sample_surface

    gt = scene.gt_mesh()
    points = sample_surface(gt.vertices, gt.faces, count, seed=0)
    _, vertex = cKDTree(gt.vertices).query(points)
    return points, gt.vertex_class[vertex]


@pytest.fixture(scope="module")
def mapper(ros_context, tmp_path_factory):
    from ssr_ros.completion.network import build_ssr_unet, preset_config
    from ssr_ros.completion.weights import save_model

    tmp = tmp_path_factory.mktemp("mapper")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    from ssr_ros.completion.contract import ModelContract

    # An untrained network whose TSDF residual head is a constant: it keeps the fused TSDF where
    # observed (so geometry checks stay meaningful) and predicts surface in every unknown voxel,
    # of which the write-back gate keeps those enclosed by observed space near observed surface.
    model = build_ssr_unet(preset_config("small", levels=3))
    with torch.no_grad():
        for parameter in model.tsdf_decoder.parameters():
            parameter.zero_()
        # tanh(-0.6 + atanh(0.5)) * 0.2 m = -1 cm: just inside a surface (the map's surface rule)
        model.tsdf_decoder.head[-1].bias.fill_(-0.6)
    contract = ModelContract(voxel_size=0.05, truncation=0.2, chunk_size=32, num_classes=model.config.num_classes)
    weights = save_model(model, tmp / "surface_unet.pt", contract=contract)
    scene = generate_scene(seed=3)
    config = SequenceConfig(width=160, height=120)
    config.trajectory.num_frames = NUM_FRAMES
    frames = list(SyntheticSequence(scene, config))
    write_bag(frames, tmp / "bag", storage="sqlite3")
    under_test = NodeUnderTest(ros_context, tmp, scene, frames, weights)
    try:
        _feed(under_test, tmp, frames)
    except BaseException:
        under_test.close()
        raise
    yield under_test
    under_test.close()


def _feed(under_test, tmp, frames):
    """Drop one frame for lack of camera_info, then replay the bag and wait until all is in."""
    under_test.wait_for(lambda: under_test.pub["depth"].get_subscription_count() > 0, "the node's subscriptions")
    under_test.wait_ready()
    under_test.publish_frame(frames[0], stamp_ns=frames[0].stamp_ns - 1_000_000, info=False)
    under_test.wait_for(lambda: under_test.counter("dropped.InvalidIntrinsics") == 1, "the no-camera_info drop")
    # The bag's first depth image may reach the node before its camera_info (separate topics):
    # give the node the camera's calibration first, as a running camera driver would have.
    info = intrinsics_to_camera_info(frames[0].intrinsics, frames[0].stamp_ns, "camera_color_optical_frame")
    under_test.wait_for(lambda: under_test.pub["info"].publish(info) or under_test.counter("camera_info_received") >= 1,
                        "the camera_info")
    report = play_bag(under_test.node, tmp / "bag", rate=1.0, wait_for_subscribers_s=30)
    assert report.published[DEFAULT_TOPICS.depth] == NUM_FRAMES
    under_test.wait_for(lambda: under_test.counter("frames_integrated") == NUM_FRAMES, "all frames integrated")
    under_test.wait_idle()


def test_every_frame_of_the_bag_is_integrated(mapper):
    assert mapper.counter("frames_received") == NUM_FRAMES + 1
    assert mapper.counter("frames_integrated") == NUM_FRAMES
    assert float(mapper.diagnostics["bytes_per_voxel"]) <= 16.0


def test_the_node_reports_its_memory_and_keeps_to_two_malloc_arenas(mapper):
    d = mapper.diagnostics
    assert int(d["process_rss"]) > int(d["map_bytes"]) > 0
    assert int(d["process_heap_in_use"]) > 0 and int(d["process_threads"]) > 4
    # malloc_arena_max's default (2) is set before rclpy.init; importing rclpy already started two
    # threads with an arena each (main + 2), and no thread after them gets a new one (glibc's default: 16 here)
    assert 1 <= int(d["process_malloc_arenas"]) <= 3
    assert int(d["completion_model_bytes"]) > 0


def test_mesh_lies_on_the_ground_truth_surfaces_with_the_right_classes(mapper):
    mapper.wait_for(lambda: len(mapper.mesh.blocks) > 0, "mesh blocks")
    mesh = mapper.mesh.mesh()
    observed = (mesh["flags"] & FLAG_OBSERVED) > 0
    assert observed.sum() > 1000
    samples, classes = gt_surface_samples(mapper.scene)
    distance, nearest = cKDTree(samples).query(mesh["vertices"][observed])
    print(f"observed mesh vertices: {np.mean(distance < 0.05):.3f} within 5 cm, median {np.median(distance):.4f} m")
    assert np.mean(distance < 0.05) > 0.9, f"median distance {np.median(distance):.3f} m"
    agree = mesh["labels"][observed] == classes[nearest]
    print(f"label agreement {agree.mean():.3f}")
    assert agree.mean() > 0.8, f"label agreement {agree.mean():.2f}"


def test_completion_on_request_flags_predicted_voxels_in_cloud_and_map(mapper):
    """The fused map is checked above; now the network runs (an untrained one: only the
    plumbing is under test) and its voxels must come out flagged as predicted."""
    response = mapper.call(Trigger, "complete", Trigger.Request())
    assert response.success and int(response.message.split()[1]) > 0, response.message
    mapper.wait_for(lambda: mapper.counter("predicted_voxels") > 0, "predicted voxels in the diagnostics")
    mapper.latest.clear()
    mapper.wait_for(lambda: {"voxels", "voxel_map", "occupancy", "occupancy_predicted", "esdf_slice_predicted"}
                    <= set(mapper.latest), "voxel outputs")
    cloud = msg_to_semantic_cloud(mapper.latest["voxels"])
    assert cloud["observed"].sum() > 500
    voxel_map = map_msg_to_boxes(mapper.latest["voxel_map"])
    flags = np.concatenate([box.flags.reshape(-1) for box in voxel_map["boxes"]])
    assert ((flags & FLAG_OBSERVED) > 0).sum() > 500
    assert ((flags & FLAG_PREDICTED) > 0).sum() > 0
    assert voxel_map["taxonomy"].num_classes == 21
    grid = mapper.latest["occupancy"]
    data = np.asarray(grid.data)
    assert (data == 100).sum() > 0 and (data == 0).sum() > 0
    cost = np.asarray(mapper.latest["occupancy_predicted"].data)
    assert cost.shape == data.shape and ((cost > 0) & (cost < 100)).sum() > 0, "predictions weighted by confidence"
    assert np.array_equal(cost == 100, data == 100), "measured obstacles are the same in both tiers"
    assert float(mapper.diagnostics["floor_height_m"]) == pytest.approx(0.0, abs=0.05)  # the room's floor
    from ssr_ros.ros.conversions.point_cloud import point_cloud_to_structured

    esdf = point_cloud_to_structured(mapper.latest["esdf_slice_predicted"])
    assert len(esdf) > 100 and esdf["distance"].min() < 0 < esdf["distance"].max()


def test_bad_frames_are_dropped_counted_and_leave_the_map_unchanged(mapper):
    before = mapper.call(SaveMap, "save_map", SaveMap.Request(path=str(mapper.tmp / "before"), formats=["map"]))
    assert before.success, before.message
    last = mapper.frames[-1]
    later = last.stamp_ns + 1_000_000_000
    ms = 1_000_000
    yuv = numpy_to_image(np.zeros(last.depth.shape, np.uint16), "16UC1", later + 1200 * ms, "camera_color_optical_frame")
    yuv.encoding = "yuv422"
    bad_frames = [
        ("depth of the wrong size for the camera_info", "dropped.InvalidIntrinsics",
         dict(stamp_ns=later + 1 * ms, depth=np.full((3, 3), 1000, np.uint16))),
        ("depth without a single valid pixel", "dropped.InvalidFrame",
         dict(stamp_ns=later + 2 * ms, depth=np.full(last.depth.shape, np.nan, np.float32), depth_encoding="32FC1")),
        ("color one row shorter than depth", "dropped.InconsistentMessage",
         dict(stamp_ns=later + 3 * ms, color=np.ascontiguousarray(last.rgb[:-1]))),
        ("no pose within 0.5 s", "dropped.PoseUnavailable", dict(stamp_ns=later + 600 * ms, pose=False)),
        ("stamp going backwards", "dropped.stamp_not_increasing", dict(stamp_ns=last.stamp_ns - 1)),
        ("depth in an unsupported encoding", "dropped.UnsupportedEncoding", dict(stamp_ns=later + 1200 * ms, depth_msg=yuv)),
    ]
    for what, counter, options in bad_frames:
        before_count = mapper.counter(counter)
        mapper.publish_frame(last, **options)
        mapper.wait_for(lambda: mapper.counter(counter) == before_count + 1, f"the drop of a frame with {what}", timeout=180)
    mapper.wait_idle()
    assert mapper.counter("frames_integrated") == NUM_FRAMES
    after = mapper.call(SaveMap, "save_map", SaveMap.Request(path=str(mapper.tmp / "after"), formats=["map"]))
    assert after.success, after.message
    a, b = map_arrays(mapper.tmp / "before" / "map.ssrmap"), map_arrays(mapper.tmp / "after" / "map.ssrmap")
    changed = [key for key in a if not np.array_equal(a[key], b[key])]
    assert changed == [], f"refused frames changed {changed}"
    assert mapper.process.poll() is None, "the node died on bad input"


def test_save_load_round_trip_and_reset_through_services(mapper):
    saved = mapper.call(SaveMap, "save_map", SaveMap.Request(path=str(mapper.tmp / "saved"), formats=[]))
    assert saved.success and sorted(Path(f).name for f in saved.files) == [
        "esdf.npz", "map.ssrmap", "mesh.ply", "mesh_semantic.ply", "occupancy.pgm", "occupancy.yaml",
        "occupancy_predicted.pgm", "occupancy_predicted.yaml", "voxels.ply"]
    from ssr_ros.planning import read_nav2_map

    nav2 = read_nav2_map(mapper.tmp / "saved" / "occupancy.yaml")
    assert (nav2.data == 100).sum() > 0 and (nav2.data == 0).sum() > 0
    import open3d as o3d  # noqa: F401 - the PLY must open in Open3D

    mesh = o3d.io.read_triangle_mesh(str(mapper.tmp / "saved" / "mesh.ply"))
    assert len(mesh.triangles) > 1000 and mesh.has_vertex_colors()
    reset = mapper.call(ResetMap, "reset_map", ResetMap.Request())
    assert reset.success
    mapper.wait_for(lambda: len(mapper.mesh.blocks) == 0, "the mesh to be cleared after reset")
    failed = mapper.call(LoadMap, "load_map", LoadMap.Request(path=str(mapper.tmp / "nowhere")))
    assert not failed.success and "current map kept" in failed.message
    loaded = mapper.call(LoadMap, "load_map", LoadMap.Request(path=str(mapper.tmp / "saved")))
    assert loaded.success, loaded.message
    mapper.wait_for(lambda: len(mapper.mesh.blocks) > 0, "the mesh to come back after load")
    again = mapper.call(SaveMap, "save_map", SaveMap.Request(path=str(mapper.tmp / "again"), formats=["map"]))
    assert again.success
    a, b = map_arrays(mapper.tmp / "saved" / "map.ssrmap"), map_arrays(mapper.tmp / "again" / "map.ssrmap")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
