"""Every form of 2D semantics: decoding, refusals with a reason, and the same map from every layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssr_ros.errors import InconsistentMessage, InvalidFrame, UnsupportedEncoding
from ssr_ros.geometry import Frame
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.image_encoding import decode_image, encode_image
from ssr_ros.map import SemanticTSDF, TSDFConfig, native
from ssr_ros.map.semantic_evidence import top2_votes
from ssr_ros.semantics.inputs import confidence_from_image, probabilities_from_array, probabilities_from_image

H, W, C = 12, 16, 21
CAM = CameraIntrinsics(fx=20.0, fy=20.0, cx=7.5, cy=5.5, width=W, height=H)


def wire(image: np.ndarray, encoding: str) -> np.ndarray:
    """The image as it arrives: encoded into a message buffer (padded rows) and decoded back."""
    height, width, step, data = encode_image(image, encoding, step=None)
    return decode_image(height, width, encoding, False, step, data)


@pytest.fixture
def probs():
    rng = np.random.default_rng(1)
    p = rng.random((H, W, C)).astype(np.float32)
    return p / p.sum(-1, keepdims=True)


def test_confidence_encodings():
    ones = np.full((H, W), 0.25, np.float32)
    assert np.allclose(confidence_from_image(wire(ones, "32FC1"), "32FC1", (H, W)), 0.25)
    mono = np.full((H, W), 51, np.uint8)
    assert np.allclose(confidence_from_image(wire(mono, "mono8"), "mono8", (H, W)), 0.2)
    with pytest.raises(InconsistentMessage, match=r"\[0, 1\]"):
        confidence_from_image(np.full((H, W), 1.5, np.float32), "32FC1", (H, W))
    with pytest.raises(InconsistentMessage, match=r"\[0, 1\]"):
        confidence_from_image(np.full((H, W), np.nan, np.float32), "32FC1", (H, W))
    with pytest.raises(UnsupportedEncoding, match="confidence encoding 'rgb8'"):
        confidence_from_image(np.zeros((H, W, 3), np.uint8), "rgb8", (H, W))
    with pytest.raises(InconsistentMessage, match="16x12"):
        confidence_from_image(np.zeros((H, W + 1), np.float32), "32FC1", (H, W))


def test_multichannel_probability_images(probs):
    decoded = probabilities_from_image(wire(probs, f"32FC{C}"), f"32FC{C}", C, (H, W))
    assert decoded.shape == (H, W, C) and np.array_equal(decoded, probs)
    as_bytes = np.round(probs * 255).astype(np.uint8)
    decoded = probabilities_from_image(wire(as_bytes, f"8UC({C})"), f"8UC({C})", C, (H, W))
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, as_bytes)
    with pytest.raises(InconsistentMessage, match="19 channels.*21 classes"):
        probabilities_from_image(wire(probs[..., :19].copy(), "32FC19"), "32FC19", C, (H, W))
    with pytest.raises(UnsupportedEncoding, match="expected 32FC21 or 8UC21"):
        probabilities_from_image(np.zeros((H, W), np.uint16), "mono16", C, (H, W))
    with pytest.raises(InconsistentMessage, match="depth image is 16x10"):
        probabilities_from_image(probs, f"32FC{C}", C, (10, W))
    with pytest.raises(UnsupportedEncoding):
        decode_image(H, W, "32FC0", False, W * 4, b"")


def test_class_major_planes(probs):
    planes = np.ascontiguousarray(np.moveaxis(probs, -1, 0)).reshape(C * H, W)
    decoded = probabilities_from_image(wire(planes, "32FC1"), "32FC1", C, (H, W), layout="chw")
    assert decoded.shape == (H, W, C) and np.array_equal(decoded, probs)
    assert not decoded.flags["C_CONTIGUOUS"]  # a view: the kernels read it in place
    with pytest.raises(InconsistentMessage, match="20 planes.*21 classes"):
        probabilities_from_image(planes[: 20 * H], "32FC1", C, (H, W), layout="chw")
    with pytest.raises(InconsistentMessage, match="expected 16x"):
        probabilities_from_image(planes[:, :-1], "32FC1", C, (H, W), layout="chw")
    # arrays (a segmenter's .npy): (H, W, N), (N, H, W) and (1, N, H, W) all work
    for array in (probs, np.moveaxis(probs, -1, 0), np.moveaxis(probs, -1, 0)[None]):
        assert np.array_equal(probabilities_from_array(array, C, (H, W)), probs)
    with pytest.raises(InconsistentMessage, match="20 classes"):
        probabilities_from_array(probs[..., :20], C, (H, W))


def test_top2_votes_order_ties_and_bad_values():
    p = torch.tensor([[[0.2, 0.5, 0.5, float("nan")], [float("inf"), 0.1, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0]]])
    labels, strengths = top2_votes(p)
    assert labels[0].tolist() == [[1, 2], [3, 1], [0, 1]]
    assert np.allclose(strengths[0].numpy(), [[0.5, 0.5], [0.3, 0.1], [0.0, 0.0]])
    labels, strengths = top2_votes(torch.tensor([[[0, 255, 51]]], dtype=torch.uint8))
    assert labels.tolist() == [[[1, 2]]] and np.allclose(strengths.numpy(), [[[1.0, 0.2]]])


def _depth():
    return np.full((H, W), 1.0, np.float32)


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_bad_semantics_leave_the_map_unchanged(probs, backend):
    if backend == "native" and native.load() is None:
        pytest.skip(f"compiled kernel unavailable: {native.build_error()}")
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.05, backend=backend), num_classes=C)
    labels = np.ones((H, W), np.int64)
    bad = [
        Frame(_depth(), CAM, np.eye(4), label_probs=probs[..., :20]),
        Frame(_depth(), CAM, np.eye(4), labels=labels, label_confidence=np.ones((H, W - 1), np.float32)),
        Frame(_depth(), CAM, np.eye(4), labels=labels, label_confidence=np.ones((H, W), np.uint8)),
        Frame(_depth(), CAM, np.eye(4), label_confidence=np.ones((H, W), np.float32)),
        Frame(_depth(), CAM, np.eye(4), labels=labels, label_probs=probs),
    ]
    for frame in bad:
        with pytest.raises(InvalidFrame):
            tsdf_map.integrate(frame)
    assert tsdf_map.num_blocks == 0 and tsdf_map.frames_integrated == 0


def _fused(backend: str, make_frame) -> SemanticTSDF:
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.05, backend=backend), num_classes=C)
    rng = np.random.default_rng(2)
    for k in range(4):
        T = np.eye(4)
        T[0, 3] = 0.03 * k
        depth = (0.8 + 0.4 * rng.random((H, W))).astype(np.float32)
        tsdf_map.integrate(make_frame(depth, T, rng))
    return tsdf_map


def _probability_frame(layout: str):
    def make(depth, T, rng):
        p = rng.random((C, H, W)).astype(np.float32)
        p[:, 0, :2] = np.nan  # no vote from these pixels
        if layout == "uint8":
            return Frame(depth, CAM, T, label_probs=np.moveaxis(np.round(np.nan_to_num(p) * 255).astype(np.uint8), 0, -1))
        view = np.moveaxis(p, 0, -1)
        return Frame(depth, CAM, T, label_probs=view if layout == "chw" else np.ascontiguousarray(view))
    return make


@pytest.mark.parametrize("layout", ["hwc", "chw", "uint8"])
def test_native_probabilities_match_the_torch_path(layout):
    if native.load() is None:
        pytest.skip(f"compiled kernel unavailable: {native.build_error()}")
    a = _fused("native", _probability_frame(layout))
    b = _fused("torch", _probability_frame(layout))
    assert a.backend == "native" and b.backend == "torch"
    assert torch.equal(a.blocks.sem_label, b.blocks.sem_label)
    assert torch.equal(a.blocks.sem_count, b.blocks.sem_count)
    assert int((a.blocks.sem_count[..., 2] > 0).sum()) > 100


def _many_blocks(backend: str, layout: str, num_classes: int, threads: int) -> SemanticTSDF:
    """A 64x48 camera over 1 cm voxels: enough blocks per frame for the kernel's helper threads,
    probabilities full of ties (a few levels), and bad values (NaN, inf, < 0, > 1) in float32."""
    cam = CameraIntrinsics(fx=80.0, fy=80.0, cx=31.5, cy=23.5, width=64, height=48)
    config = TSDFConfig(voxel_size=0.01, backend=backend, threads=threads, semantic_max_weight=3.0)
    tsdf_map = SemanticTSDF(config, num_classes=num_classes)
    rng = np.random.default_rng(3)
    for k in range(4):
        T = np.eye(4)
        T[:2, 3] = 0.01 * k, -0.005 * k
        depth = (0.9 + 0.1 * rng.random((48, 64))).astype(np.float32)
        levels = rng.integers(0, 4, (num_classes, 48, 64))
        if layout.startswith("uint8"):  # class-major, or pixel-major ("uint8-hwc")
            probs = np.moveaxis((levels * 60).astype(np.uint8), 0, -1)
            probs = np.ascontiguousarray(probs) if layout == "uint8-hwc" else probs
        else:
            p = (levels / 3.0).astype(np.float32)
            bad = rng.random(p.shape) < 0.02
            p[bad] = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.5, 1.5], np.float32), int(bad.sum()))
            probs = np.moveaxis(p, 0, -1) if layout == "chw" else np.ascontiguousarray(np.moveaxis(p, 0, -1))
        tsdf_map.integrate(Frame(depth, cam, T, label_probs=probs))
    return tsdf_map


@pytest.mark.parametrize("layout", ["hwc", "chw", "uint8", "uint8-hwc"])
@pytest.mark.parametrize("num_classes,threads", [(21, 1), (21, 2), (40, 1)])
def test_native_probabilities_match_with_ties_bad_values_and_helper_threads(layout, num_classes, threads):
    """The kernel lists the votes per block (helpers commit theirs with their block), then takes
    each named pixel's top two (pixel-major: per pixel, AVX2 up to 32 classes and a scalar loop
    beyond; class-major: plane by plane): the same map."""
    if native.load() is None:
        pytest.skip(f"compiled kernel unavailable: {native.build_error()}")
    a = _many_blocks("native", layout, num_classes, threads)
    b = _many_blocks("torch", layout, num_classes, threads)
    assert a.backend == "native" and b.backend == "torch"
    assert a.num_blocks >= 64  # 32768 voxels: helper threads join in
    assert torch.equal(a.blocks.sem_label, b.blocks.sem_label)
    # evidence equal but for a few float16 rounding steps (the torch path scales in another order)
    x, y = a.blocks.sem_count.float(), b.blocks.sem_count.float()
    assert torch.allclose(x, y, rtol=1e-3, atol=1e-3)
    assert int((x != y).sum()) <= 5
    assert int((x[..., 2] > 0).sum()) > 50000


def test_class_major_and_pixel_major_give_the_same_map():
    a = _fused("torch", _probability_frame("chw"))
    b = _fused("torch", _probability_frame("hwc"))
    assert torch.equal(a.blocks.sem_label, b.blocks.sem_label) and torch.equal(a.blocks.sem_count, b.blocks.sem_count)


def test_label_confidence_scales_the_vote():
    def make(confidence):
        def frame(depth, T, rng):
            return Frame(depth, CAM, T, labels=np.full((H, W), 4, np.int64),
                         label_confidence=np.full((H, W), confidence, np.float32))
        return frame

    full = _fused("torch", make(1.0))
    half = _fused("torch", make(0.5))
    voted = full.blocks.sem_count[..., 2] > 0
    assert torch.allclose(half.blocks.sem_count[..., 2][voted].float(), 0.5 * full.blocks.sem_count[..., 2][voted].float(),
                          rtol=1e-2, atol=1e-3)
    if native.load() is not None:
        native_half = _fused("native", make(0.5))
        assert torch.equal(native_half.blocks.sem_count, half.blocks.sem_count)
