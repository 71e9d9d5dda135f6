"""The compiled CPU kernel and the torch path (and CUDA) build the same map."""

import numpy as np
import pytest
import torch

from scenes import Box, Plane, Sphere, frame_of, look_at, map_state, render, small_camera
from test_chunks import predicted_sphere
from ssr_ros.geometry import Frame
from ssr_ros.map import SemanticTSDF, TSDFConfig, native

CAM = small_camera(120, 90)


def build(backend: str, device: str = "cpu", **overrides) -> SemanticTSDF:
    config = TSDFConfig(voxel_size=0.03, backend=backend, max_weight=6.0, semantic_max_weight=4.0, **overrides)
    tsdf_map = SemanticTSDF(config, num_classes=21, device=device)
    shapes = [Plane((0, 0, 1), 2.0, label=5), Box((-0.3, -0.3, 1.5), (0.2, 0.3, 1.8), label=7), Sphere((0.5, 0.2, 1.6), 0.2, label=9)]
    rng = np.random.default_rng(0)
    tsdf_map.write_predictions(torch.tensor([-20, -20, 55]), predicted_sphere(size=16), torch.full((16, 16, 16, 3), 0.25))
    for k in range(8):
        T = look_at((0.2 * np.cos(k), 0.15 * np.sin(k), 0.1 * k / 8), (0.05 * k, 0, 2.0), up=(0, -1, 0))
        depth, rgb, labels = render(shapes if k < 6 else shapes[:1], CAM, T)
        depth[rng.random(depth.shape) < 0.05] = np.nan
        labels = np.where(rng.random(labels.shape) < 0.3, rng.integers(0, 21, labels.shape), labels)
        if k % 2:
            probs = rng.random(labels.shape + (21,)).astype(np.float32)
            probs /= probs.sum(-1, keepdims=True)
            frame = Frame(depth, CAM, T, rgb=rgb, label_probs=probs)
        else:
            frame = Frame(depth, CAM, T, rgb=rgb, labels=labels)
        tsdf_map.integrate(frame)
    return tsdf_map


def assert_same_map(a: SemanticTSDF, b: SemanticTSDF) -> None:
    sa, sb = map_state(a), map_state(b)
    assert torch.equal(sa["keys"].cpu(), sb["keys"].cpu())
    assert torch.equal(sa["coords"].cpu(), sb["coords"].cpu())
    for name in ("tsdf", "weight", "sem_count"):
        x, y = sa[name].cpu().float(), sb[name].cpu().float()
        # equal up to one float16 rounding step in rare ties
        assert torch.allclose(x, y, atol=1e-3, rtol=1e-3), name
        assert (x != y).float().mean() < 1e-3, name
    for name in ("color", "sem_label"):
        x, y = sa[name].cpu().int(), sb[name].cpu().int()
        assert ((x - y).abs() <= 1).all(), name
        assert (x != y).float().mean() < 1e-3, name


@pytest.mark.skipif(native.load() is None, reason=f"C++ kernel not available: {native.build_error()}")
@pytest.mark.parametrize("weighting", ["constant", "inverse_square"])
def test_native_kernel_matches_the_torch_path(weighting):
    torch_map = build("torch", weighting=weighting)
    native_map = build("native", weighting=weighting)
    assert torch_map.backend == "torch" and native_map.backend == "native"
    assert_same_map(torch_map, native_map)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    cpu_map = build("torch")
    cuda_map = build("torch", device="cuda")
    assert_same_map(cpu_map, cuda_map)
    points = torch.rand(1000, 3) * torch.tensor([1.5, 1.5, 0.8]) + torch.tensor([-0.75, -0.75, 1.4])
    a, b = cpu_map.query(points), cuda_map.query(points.cuda())
    assert torch.allclose(torch.nan_to_num(a["tsdf"], nan=9.0), torch.nan_to_num(b["tsdf"].cpu(), nan=9.0), atol=1e-3)
    assert cpu_map.mesh().num_triangles == pytest.approx(cuda_map.mesh().num_triangles, rel=0.01)
