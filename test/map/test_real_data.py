"""Fusion of a few real Kinect frames (7-Scenes RedKitchen from ../shared/data)."""

import numpy as np
import pytest
import torch

from ssr_ros.geometry import CameraIntrinsics, Frame
from ssr_ros.map import SemanticTSDF, TSDFConfig


@pytest.mark.shared_data
def test_real_frames_fuse_into_a_surface_that_renders_back(shared_data):
    o3d = pytest.importorskip("open3d")
    folder = shared_data / "7scenes_tsdf_fusion" / "data"
    if not folder.is_dir():
        pytest.skip(f"7-Scenes frames not found in {folder}")
    K = np.loadtxt(folder / "camera-intrinsics.txt")
    intrinsics = CameraIntrinsics.from_matrix(K, 640, 480).scaled(0.25)
    tsdf_map = SemanticTSDF(TSDFConfig(voxel_size=0.05, max_depth=4.0), num_classes=21)
    for i in range(0, 20, 4):
        depth = np.asarray(o3d.io.read_image(str(folder / f"frame-{i:06d}.depth.png"))).astype(np.float32) / 1000
        rgb = np.asarray(o3d.io.read_image(str(folder / f"frame-{i:06d}.color.jpg")))[..., :3]
        pose = np.loadtxt(folder / f"frame-{i:06d}.pose.txt")
        u, _, vt = np.linalg.svd(pose[:3, :3])  # stored with 7 digits: re-orthonormalise
        pose[:3, :3] = u @ vt
        frame = Frame(np.ascontiguousarray(depth[::4, ::4]), intrinsics, pose, rgb=np.ascontiguousarray(rgb[::4, ::4]))
        tsdf_map.integrate(frame)
    assert tsdf_map.num_blocks > 50
    assert tsdf_map.mesh().num_triangles > 1000
    images = tsdf_map.raycast(intrinsics, pose)
    both = images["hit"].numpy() & (frame.depth > 0)
    assert both.mean() > 0.5
    error = np.abs(images["depth"].numpy() - frame.depth)[both]
    assert np.median(error) < 0.02
