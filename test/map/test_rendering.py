"""Point queries and raycasting against analytic scenes."""

import numpy as np
import torch

from scenes import Box, Plane, Sphere, frame_of, look_at, orbit_poses, render, small_camera
from ssr_ros.map import SemanticTSDF, TSDFConfig

CAM = small_camera()


def test_raycast_reproduces_depth_labels_colors_and_normals():
    shapes = [Plane((0, 0, 1), 2.0, label=5, color=(250, 10, 10)), Box((-0.3, -0.3, 1.5), (0.3, 0.3, 1.8), label=7, color=(10, 10, 250))]
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.04), num_classes=21)
    for k in range(4):
        T = look_at((0.1 * np.cos(k), 0.1 * np.sin(k), 0.0), (0, 0, 2), up=(0, -1, 0))
        tsdf_map.integrate(frame_of(shapes, CAM, T))
    T = look_at((0.05, -0.05, 0.1), (0, 0, 2), up=(0, -1, 0))
    images = tsdf_map.raycast(CAM, T)
    depth, _, labels = render(shapes, CAM, T)
    hit = images["hit"].numpy()
    assert hit.mean() > 0.9
    # away from depth discontinuities the rendered depth matches the true depth
    smooth = np.ones_like(hit)
    for axis in (0, 1):
        smooth &= np.abs(np.gradient(depth, axis=axis)) < 0.02
    both = hit & smooth
    error = np.abs(images["depth"].numpy() - depth)[both]
    assert np.median(error) < 0.1 * tsdf_map.voxel_size and np.quantile(error, 0.95) < 0.5 * tsdf_map.voxel_size
    assert (images["label"].numpy()[both] == labels[both]).mean() > 0.97
    box_pixels = both & (labels == 7)
    assert (images["color"].numpy()[box_pixels][:, 2] > 200).mean() > 0.95
    # normals of the wall and of the box front point back toward the camera (-z)
    assert (images["normal"].numpy()[both][:, 2] < -0.9).mean() > 0.9
    assert images["observed"].numpy()[both].all()


def test_query_interpolates_tsdf_trilinearly_on_a_sphere():
    sphere = Sphere((0.0, 0.0, 0.0), 0.5)
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.05), num_classes=21)
    for T in orbit_poses((0, 0, 0), 2.0, 8, height=0.2):
        tsdf_map.integrate(frame_of([sphere], CAM, T))
    rng = np.random.default_rng(3)
    d = rng.normal(size=(300, 3))
    d[:, 2] *= 0.2
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    r = rng.uniform(0.47, 0.53, size=(300, 1))
    q = tsdf_map.query(torch.tensor(d * r, dtype=torch.float32))
    known = ~torch.isnan(q["tsdf"])
    assert known.float().mean() > 0.95
    truth = torch.tensor(r[:, 0] - 0.5, dtype=torch.float32)
    # projective distances overestimate the Euclidean distance off the surface, never the sign
    clear = known & (truth.abs() > 0.25 * tsdf_map.voxel_size)
    assert (torch.sign(q["tsdf"][clear]) == torch.sign(truth[clear])).all()
    assert (q["tsdf"][known] - truth[known]).abs().max() < tsdf_map.voxel_size
    near = known & (truth.abs() < 0.1 * tsdf_map.voxel_size)
    assert (q["tsdf"][near]).abs().max() < 0.5 * tsdf_map.voxel_size
    unknown = tsdf_map.query(torch.tensor([[10.0, 10.0, 10.0]]))
    assert torch.isnan(unknown["tsdf"]).all() and unknown["label"][0] == 0 and not unknown["observed"][0]
