"""The segmenter stage as users run it: the node in its own process, the project's small
segmenter exported by ``ssr export-segmenter`` (TorchScript and ONNX), RGB-D frames and poses
over real DDS and no label topic. The map the node saves must carry the semantics the torch
model gives on those frames, fused the same way (an in-process pipeline fed the torch model's
probabilities is the reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS
from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, generate_scene
from ssr_ros.ros.conversions.camera_info import intrinsics_to_camera_info
from ssr_ros.ros.conversions.image import numpy_to_image
from ssr_ros.ros.conversions.pose import matrix_to_pose_stamped, pose_stamped_to_matrix
from ssr_ros.ros.mapper_client import MapperProcess
from ssr_ros.srv import SaveMap

pytestmark = [pytest.mark.ros, pytest.mark.slow]  # a node process per model: ~10 s each
H, W = 48, 64
NUM_FRAMES = 4
FRAME_ID = "camera_color_optical_frame"
SEMANTIC_LAYERS = ("sem_label", "sem_count")


@pytest.fixture(scope="module")
def frames():
    scene = generate_scene(seed=5)
    config = SequenceConfig(width=W, height=H)
    config.trajectory.num_frames = NUM_FRAMES
    return [view for view in SyntheticSequence(scene, config)]


@pytest.fixture(scope="module")
def torch_model():
    from ssr_ros.completion.weights import load_model
    from ssr_ros.package_files import find_package_file

    weights = find_package_file("models", "segmenter_small.pt")
    if weights is None:
        pytest.skip("models/segmenter_small.pt is absent")
    return load_model(weights, "cpu", expected_type="segmenter2d")


def map_arrays(storage) -> dict[str, np.ndarray]:
    from ssr_ros.map.map_file import _arrays

    return _arrays(storage)


@pytest.fixture(scope="module")
def reference(frames, torch_model):
    """The map of an in-process pipeline fed the torch model's probabilities, with the poses as
    they arrive over DDS (through a PoseStamped)."""
    import dataclasses

    import torch

    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    config = PipelineConfig(device="cpu")
    config.completion.type = "none"
    pipeline = MappingPipeline(config, model=None)
    pipeline.semantic_source_expected = True
    for frame in frames:
        with torch.no_grad():
            probs = torch_model.predict_probs(torch.from_numpy(frame.rgb).float() / 255.0).numpy()
        pose = pose_stamped_to_matrix(matrix_to_pose_stamped(frame.T_world_cam, "map", frame.stamp_ns))
        pipeline.integrate(dataclasses.replace(frame, T_world_cam=pose, labels=None, label_confidence=None,
                                               label_probs=probs))
    assert pipeline.semantic_source == "frames"
    return map_arrays(pipeline.map)


def export(kind: str, out: Path) -> Path:
    """The model file ``ssr export-segmenter`` writes for 48x64 input."""
    from ssr_ros.cli.main import main

    assert main(["export-segmenter", "--out", str(out), "--height", str(H), "--width", str(W), "--format", kind]) == 0
    return out / {"torchscript": "segmenter.ts.pt", "onnx": "segmenter.onnx"}[kind]


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_the_node_labels_the_map_with_its_segmenter_over_dds(ros_context, tmp_path, frames, reference, kind):
    if kind == "onnx":
        pytest.importorskip("onnx", reason="the ONNX exporter needs the 'onnx' package (pip install ssr_ros[onnx])")
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install ssr_ros[onnx])")
    model_file = export(kind, tmp_path / "model")
    node = MapperProcess(ros_context, {
        "segmenter.type": kind, "segmenter.model": str(model_file), "segmenter.device": "cpu",
        "segmenter.rate_hz": 1000.0, "completion.type": "none", "layout.type": "none", "device": "cpu", "sensor_qos": "reliable",
        "pose_wait_s": 5.0, "warn_throttle_s": 0.0,
    }, client_name=f"segmenter_{kind}_client", outputs=())
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        pub = {"info": node.node.create_publisher(CameraInfo, DEFAULT_TOPICS.camera_info, qos),
               "pose": node.node.create_publisher(PoseStamped, DEFAULT_TOPICS.pose, qos),
               "depth": node.node.create_publisher(Image, DEFAULT_TOPICS.depth, qos),
               "color": node.node.create_publisher(Image, DEFAULT_TOPICS.color, qos)}
        node.wait_for(lambda: pub["color"].get_subscription_count() > 0 and pub["pose"].get_subscription_count() > 0,
                      "the node's subscriptions")
        node.wait_ready()
        assert node.node.count_subscribers(DEFAULT_TOPICS.labels) == 0  # the model is the semantic source
        for k, frame in enumerate(frames, start=1):
            # one frame at a time, so the segmenter is idle for each and every frame is segmented
            stamp = frame.stamp_ns
            pub["info"].publish(intrinsics_to_camera_info(frame.intrinsics, stamp, FRAME_ID))
            pub["pose"].publish(matrix_to_pose_stamped(frame.T_world_cam, "map", stamp))
            pub["depth"].publish(numpy_to_image(frame.depth.astype(np.float32), "32FC1", stamp, FRAME_ID))
            pub["color"].publish(numpy_to_image(frame.rgb, "rgb8", stamp, FRAME_ID))
            node.wait_for(lambda k=k: node.counter("frames_integrated") == k and node.counter("frames_segmented") == k,
                          f"frame {k} to be segmented and integrated", timeout=60)
        assert node.counter("segmenter_failed") == 0
        saved = node.call(SaveMap, "save_map", SaveMap.Request(path=str(tmp_path / "saved"), formats=["map"]))
        assert saved.success, saved.message
    finally:
        node.close()
    from ssr_ros.map import SemanticTSDF

    got = map_arrays(SemanticTSDF.load(tmp_path / "saved" / "map.ssrmap", device="cpu"))
    np.testing.assert_array_equal(got["block_coords"], reference["block_coords"])
    for name in ("tsdf", "weight", "color"):  # the same frames and poses: the same geometry, bit for bit
        np.testing.assert_array_equal(got[name], reference[name], err_msg=name)
    observed = reference["weight"] > 0
    assert observed.sum() > 1000
    labels, expected = got["sem_label"][observed], reference["sem_label"][observed]
    assert len(np.unique(expected[..., 0])) >= 3  # the model tells several classes apart in this room
    # the exported model's probabilities differ from torch's in the last float bits, which may move
    # a float16 evidence count by one step: labels equal, evidence within that
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_allclose(got["sem_count"][observed].astype(np.float32),
                               reference["sem_count"][observed].astype(np.float32), rtol=2e-3, atol=1e-3)
