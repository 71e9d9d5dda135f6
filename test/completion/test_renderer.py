"""Differentiable TSDF renderer: analytic surfaces, gradients."""

import math

import pytest
import torch

from ssr_ros.completion.renderer import camera_rays, look_at, render_chunk, widened_intrinsics
from ssr_ros.geometry import CameraIntrinsics

VOXEL = 0.05
SIZE = 32


def _centers(size, origin, voxel):
    axes = [torch.arange(n, dtype=torch.float64) for n in size]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return origin + (grid + 0.5) * voxel


def _sphere_tsdf(center, radius, truncation=0.15, size=(SIZE,) * 3, origin=None):
    origin = torch.zeros(3, dtype=torch.float64) if origin is None else origin
    p = _centers(size, origin, VOXEL)
    return ((p - center).norm(dim=-1) - radius).clamp(-truncation, truncation), origin


def _ray_sphere_depth(intrinsics, T, center, radius):
    o, d = camera_rays(intrinsics, T.to(torch.float64))
    o, d = o[0], d[0]
    oc = o - center
    a = (d * d).sum(-1)
    b = 2 * (d * oc).sum(-1)
    c = (oc * oc).sum() - radius**2
    disc = b * b - 4 * a * c
    t = (-b - disc.clamp(min=0).sqrt()) / (2 * a)
    return torch.where(disc > 0, t, torch.zeros_like(t))


def test_plane_depth_is_exact_for_a_fronto_parallel_plane():
    # A plane z = 1.0 (world); camera at z = 0.2 looking along +z (OpenCV: z forward).
    origin = torch.tensor([-0.8, -0.8, 0.0], dtype=torch.float64)
    p = _centers((SIZE,) * 3, origin, VOXEL)
    tsdf = (1.0 - p[..., 2]).clamp(-0.15, 0.15)
    K = CameraIntrinsics(20.0, 20.0, 7.5, 5.5, 16, 12)
    T = torch.eye(4, dtype=torch.float64)
    T[2, 3] = 0.2
    out = render_chunk(tsdf, origin, VOXEL, K, T)
    assert out.hit.all()
    assert torch.allclose(out.depth[0], torch.full((12, 16), 0.8, dtype=torch.float64), atol=1e-6)


def test_sphere_depth_matches_ray_intersection_within_a_fraction_of_a_voxel():
    center = torch.tensor([0.8, 0.8, 0.8], dtype=torch.float64)
    radius = 0.5
    tsdf, origin = _sphere_tsdf(center, radius)
    K = CameraIntrinsics(40.0, 40.0, 15.5, 11.5, 32, 24)
    T = look_at(torch.tensor([0.8, -1.2, 1.1]), center)
    out = render_chunk(tsdf, origin, VOXEL, K, T)
    truth = _ray_sphere_depth(K, T, center, radius)
    inner = truth > 0
    # Rays that graze the silhouette can miss a thin interpolated shell: compare where both hit.
    both = inner & out.hit[0]
    assert both.sum() > 0.9 * inner.sum()
    error = (out.depth[0][both] - truth[both]).abs()
    assert error.max() < 0.25 * VOXEL, error.max()
    assert not out.hit[0][truth == 0].any() or out.hit[0][truth == 0].float().mean() < 0.05


def test_features_are_sampled_at_the_surface_and_rays_that_miss_give_zero():
    center = torch.tensor([0.8, 0.8, 0.8], dtype=torch.float64)
    tsdf, origin = _sphere_tsdf(center, 0.3)
    p = _centers(tsdf.shape, origin, VOXEL)
    # A feature equal to the world x coordinate: rendered value must equal x of the hit point.
    features = p[..., 0][None].clone()
    K = CameraIntrinsics(30.0, 30.0, 11.5, 11.5, 24, 24)
    T = look_at(torch.tensor([0.8, -0.5, 0.8]), center)
    out = render_chunk(tsdf, origin, VOXEL, K, T, features=features)
    o, d = camera_rays(K, T.to(torch.float64))
    hit_x = (o[0] + out.depth[0][..., None] * d[0])[..., 0]
    assert out.hit[0].any() and (~out.hit[0]).any()
    assert torch.allclose(out.features[0, ..., 0][out.hit[0]], hit_x[out.hit[0]], atol=1e-6)
    assert (out.features[0][~out.hit[0]] == 0).all()
    assert (out.depth[0][~out.hit[0]] == 0).all()


def test_batched_views_match_single_views():
    center = torch.tensor([0.8, 0.8, 0.8], dtype=torch.float64)
    tsdf, origin = _sphere_tsdf(center, 0.4)
    K = CameraIntrinsics(20.0, 20.0, 7.5, 7.5, 16, 16)
    poses = torch.stack([look_at(torch.tensor([0.8, -0.6, 1.0]), center), look_at(torch.tensor([2.3, 0.6, 0.9]), center)])
    batched = render_chunk(tsdf, origin, VOXEL, K, poses)
    for v in range(2):
        single = render_chunk(tsdf, origin, VOXEL, K, poses[v])
        assert torch.equal(single.hit[0], batched.hit[v])
        assert torch.allclose(single.depth[0], batched.depth[v])


def test_gradcheck_depth_and_features_float64():
    torch.manual_seed(0)
    size = (6, 6, 6)
    origin = torch.zeros(3, dtype=torch.float64)
    p = _centers(size, origin, VOXEL)
    base = (0.16 - p[..., 2]) + 0.01 * torch.randn(size, dtype=torch.float64)  # plane near z = 0.16
    tsdf = base.clone().requires_grad_(True)
    features = torch.rand(2, *size, dtype=torch.float64, requires_grad=True)
    K = CameraIntrinsics(8.0, 8.0, 1.5, 1.5, 4, 4)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, 3] = torch.tensor([0.15, 0.15, -0.3])

    def depth_fn(t):
        return render_chunk(t, origin, VOXEL, K, T, step=0.37).depth

    def feature_fn(t, f):
        return render_chunk(t, origin, VOXEL, K, T, features=f, step=0.37).features

    assert render_chunk(tsdf, origin, VOXEL, K, T, step=0.37).hit.all()
    assert torch.autograd.gradcheck(depth_fn, (tsdf,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(feature_fn, (tsdf, features), eps=1e-6, atol=1e-5)


def test_gradients_reach_only_voxels_near_the_hit():
    center = torch.tensor([0.8, 0.8, 0.8], dtype=torch.float64)
    tsdf, origin = _sphere_tsdf(center, 0.4)
    tsdf.requires_grad_(True)
    K = CameraIntrinsics(10.0, 10.0, 3.5, 3.5, 8, 8)
    T = look_at(torch.tensor([0.8, -0.6, 0.8]), center)
    out = render_chunk(tsdf, origin, VOXEL, K, T)
    out.depth.sum().backward()
    touched = tsdf.grad.abs() > 0
    assert touched.any()
    p = _centers(tsdf.shape, origin, VOXEL)
    distance_to_surface = ((p - center).norm(dim=-1) - 0.4).abs()
    assert distance_to_surface[touched].max() < 2 * VOXEL


def test_widened_intrinsics_keep_size_and_scale_focal():
    K = CameraIntrinsics(100.0, 90.0, 31.5, 23.5, 64, 48)
    wide = widened_intrinsics(K, 1.5)
    assert wide.shape == K.shape
    assert math.isclose(wide.fx, 100.0 / 1.5) and math.isclose(wide.fy, 60.0)


def test_look_at_is_an_opencv_camera():
    T = look_at(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([2.0, 0.0, 1.0]))
    assert torch.allclose(T[:3, 2], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))  # z forward
    assert torch.allclose(T[:3, 1], torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64))  # y down
    assert torch.allclose(torch.linalg.det(T[:3, :3]), torch.tensor(1.0, dtype=torch.float64))
