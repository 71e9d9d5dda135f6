"""Integration on analytic scenes: TSDF values, weights, semantics, carving, refused frames."""

import numpy as np
import pytest
import torch

from scenes import Box, Plane, Sphere, frame_of, look_at, map_state, orbit_poses, render, same_state, small_camera
from ssr_ros.errors import InvalidFrame, InvalidPose
from ssr_ros.geometry import Frame
from ssr_ros.map import SemanticTSDF, TSDFConfig

CAM = small_camera()


def new_map(**overrides) -> SemanticTSDF:
    overrides.setdefault("voxel_size", 0.04)
    return SemanticTSDF(TSDFConfig(**overrides), num_classes=21, device="cpu")


def test_frontal_plane_tsdf_sign_and_magnitude():
    wall = Plane((0, 0, 1), 2.0)
    tsdf_map = new_map()
    tsdf_map.integrate(frame_of([wall], CAM, np.eye(4)))
    z = np.linspace(1.9, 2.1, 9)
    points = torch.tensor([[0.013, -0.021, zz] for zz in z], dtype=torch.float32)
    values = tsdf_map.query(points)
    expected = 2.0 - z  # positive in front (free space), negative behind
    assert torch.allclose(values["tsdf"], torch.tensor(expected, dtype=torch.float32), atol=2e-3)
    assert values["observed"][torch.tensor(z <= 2.04)].all()
    # the weight drops off linearly from one voxel behind the surface
    assert (values["weight"][torch.tensor(z <= 2.04)] == 1).all() and values["weight"][-1] < 0.75
    assert (values["label"] == 2).all()


def test_truncation_clamps_far_free_space_and_skips_far_behind():
    wall = Plane((0, 0, 1), 2.0)
    tsdf_map = new_map()
    tsdf_map.integrate(frame_of([wall], CAM, np.eye(4)))
    trunc = tsdf_map.truncation
    front = tsdf_map.query(torch.tensor([[0.0, 0.0, 2.0 - 1.5 * trunc]]))  # allocated block, free space
    assert front["weight"][0] > 0 and front["tsdf"][0] == pytest.approx(trunc, abs=1e-4)
    behind = tsdf_map.query(torch.tensor([[0.0, 0.0, 2.0 + 1.6 * trunc]]))
    assert behind["weight"][0] == 0  # never updated: too far behind the surface


def test_sphere_tsdf_sign_near_surface():
    sphere = Sphere((0.0, 0.0, 0.0), 0.4)
    tsdf_map = new_map()
    for T in orbit_poses((0, 0, 0), 1.5, 8):
        tsdf_map.integrate(frame_of([sphere], CAM, T))
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(200, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    directions = directions[np.abs(directions[:, 2]) < 0.5]  # latitudes the orbit sees well
    for offset in (-0.06, 0.06):
        points = torch.tensor(directions * (0.4 + offset), dtype=torch.float32)
        tsdf = tsdf_map.query(points)["tsdf"]
        known = ~torch.isnan(tsdf)
        assert known.float().mean() > 0.9
        assert (torch.sign(tsdf[known]) == np.sign(offset)).all()
        # projective distances overestimate the Euclidean one, never underestimate it much
        assert (tsdf[known].abs() > 0.5 * abs(offset)).all()


def test_weights_are_capped_and_depth_weighting_applies():
    wall = Plane((0, 0, 1), 2.0)
    tsdf_map = new_map(max_weight=3.0)
    frame = frame_of([wall], CAM, np.eye(4))
    for _ in range(5):
        tsdf_map.integrate(frame)
    assert tsdf_map.query(torch.tensor([[0.0, 0.0, 2.0]]))["weight"][0] == pytest.approx(3.0)
    inverse = new_map(weighting="inverse_square")
    inverse.integrate(frame)
    assert inverse.query(torch.tensor([[0.0, 0.0, 2.0]]))["weight"][0] == pytest.approx(0.25, rel=0.05)


def test_only_blocks_near_the_surface_are_allocated():
    wall = Plane((0, 0, 1), 2.0)
    tsdf_map = new_map()
    tsdf_map.integrate(frame_of([wall], CAM, np.eye(4)))
    coords = tsdf_map.allocated_block_coords()
    extent = tsdf_map.config.block_extent
    z_lo = coords[:, 2].to(torch.float32) * extent
    assert (z_lo <= 2.0 + tsdf_map.truncation).all() and (z_lo + extent >= 2.0 - tsdf_map.truncation).all()
    assert tsdf_map.bytes_per_voxel() <= 16.0


def two_class_scene():
    return [Plane((0, 0, 1), 2.0, label=5, color=(255, 0, 0)), Box((-0.3, -0.3, 1.6), (0.3, 0.3, 1.9), label=7, color=(0, 0, 255))]


def test_labels_converge_to_the_majority_under_noise():
    shapes = two_class_scene()
    tsdf_map = new_map()
    rng = np.random.default_rng(1)
    for k in range(12):
        T = look_at((0.15 * np.sin(k), 0.1 * np.cos(k), 0.0), (0, 0, 2.0), up=(0, -1, 0))
        depth, rgb, labels = render(shapes, CAM, T)
        noisy = labels.copy()
        flip = rng.random(labels.shape) < 0.35  # 35 % of the pixels carry a random wrong class
        noisy[flip] = rng.integers(1, 21, size=int(flip.sum()))
        tsdf_map.integrate(Frame(depth, CAM, T, rgb=rgb, labels=noisy))
    box_front = torch.tensor([[x, y, 1.6] for x in np.linspace(-0.2, 0.2, 5) for y in np.linspace(-0.2, 0.2, 5)])
    wall = torch.tensor([[x, 0.45, 2.0] for x in np.linspace(-0.4, 0.4, 9)])
    box_q, wall_q = tsdf_map.query(box_front), tsdf_map.query(wall)
    assert (box_q["label"] == 7).float().mean() >= 0.95
    assert (wall_q["label"] == 5).float().mean() >= 0.95
    assert box_q["confidence"].mean() > 0.4


def test_label_probabilities_are_fused_like_labels():
    shapes = two_class_scene()
    tsdf_map = new_map()
    depth, rgb, labels = render(shapes, CAM, np.eye(4))
    probs = np.full(labels.shape + (21,), 0.01, np.float32)
    np.put_along_axis(probs, labels[..., None], 0.8, axis=-1)
    tsdf_map.integrate(Frame(depth, CAM, np.eye(4), rgb=rgb, label_probs=probs))
    q = tsdf_map.query(torch.tensor([[0.0, 0.0, 1.6], [0.0, 0.45, 2.0]]))
    assert q["label"].tolist() == [7, 5]
    assert (q["confidence"] > 0.9).all()  # the second-ranked class got 0.01 of the evidence


def test_space_carving_removes_a_moved_object():
    wall = Plane((0, 0, 1), 2.0)
    box = Box((-0.2, -0.2, 1.4), (0.2, 0.2, 1.7))
    tsdf_map = new_map(max_weight=20.0)
    T = np.eye(4)
    for _ in range(3):
        tsdf_map.integrate(frame_of([wall, box], CAM, T))
    box_face = torch.tensor([[0.0, 0.0, 1.4], [0.05, -0.05, 1.4]])
    assert (tsdf_map.query(box_face)["tsdf"].abs() < 0.02).all()
    for _ in range(6):  # the box has gone: the camera sees the wall through it
        tsdf_map.integrate(frame_of([wall], CAM, T))
    assert (tsdf_map.query(box_face)["tsdf"] > 0.05).all()
    mesh = tsdf_map.mesh()
    assert not np.any(np.abs(mesh.vertices[:, 2] - 1.4) < 0.05)


def test_without_carving_the_object_stays():
    wall = Plane((0, 0, 1), 2.0)
    box = Box((-0.2, -0.2, 1.4), (0.2, 0.2, 1.7))
    tsdf_map = new_map(max_weight=20.0, space_carving=False)
    for _ in range(3):
        tsdf_map.integrate(frame_of([wall, box], CAM, np.eye(4)))
    for _ in range(6):
        tsdf_map.integrate(frame_of([wall], CAM, np.eye(4)))
    assert (tsdf_map.query(torch.tensor([[0.0, 0.0, 1.4]]))["tsdf"].abs() < 0.02).all()


def bad_frames():
    wall = Plane((0, 0, 1), 2.0)
    good = frame_of([wall], CAM, np.eye(4))
    nan_pose = np.eye(4)
    nan_pose[0, 3] = np.nan
    skewed = np.eye(4)
    skewed[0, 1] = 0.5
    yield "nan pose", Frame(good.depth, CAM, nan_pose), InvalidPose
    yield "non-rigid pose", Frame(good.depth, CAM, skewed), InvalidPose
    yield "depth size", Frame(good.depth[:-1], CAM, np.eye(4)), InvalidFrame
    yield "empty depth", Frame(np.zeros_like(good.depth), CAM, np.eye(4)), InvalidFrame
    yield "nan depth", Frame(np.full_like(good.depth, np.nan), CAM, np.eye(4)), InvalidFrame
    yield "rgb size", Frame(good.depth, CAM, np.eye(4), rgb=good.rgb[:, :-1]), InvalidFrame
    yield "label range", Frame(good.depth, CAM, np.eye(4), labels=np.full(good.depth.shape, 99)), InvalidFrame
    yield "prob classes", Frame(good.depth, CAM, np.eye(4), label_probs=np.zeros(good.depth.shape + (3,), np.float32)), InvalidFrame


@pytest.mark.parametrize("name,frame,error", list(bad_frames()), ids=[n for n, _, _ in bad_frames()])
def test_bad_frames_are_refused_and_leave_the_map_untouched(name, frame, error):
    tsdf_map = new_map()
    tsdf_map.integrate(frame_of([Sphere((0, 0, 2.0), 0.5)], CAM, np.eye(4)))
    before = map_state(tsdf_map)
    with pytest.raises(error):
        tsdf_map.integrate(frame)
    assert same_state(before, map_state(tsdf_map))


def test_out_of_range_depth_is_ignored():
    wall = Plane((0, 0, 1), 2.0)
    tsdf_map = new_map(max_depth=1.5)
    tsdf_map.integrate(frame_of([wall], CAM, np.eye(4)))
    assert tsdf_map.num_blocks == 0


def test_reset_forgets_everything():
    tsdf_map = new_map()
    tsdf_map.integrate(frame_of([Plane((0, 0, 1), 2.0)], CAM, np.eye(4)))
    tsdf_map.reset()
    assert tsdf_map.num_blocks == 0 and tsdf_map.memory_bytes() == 0
    assert torch.isnan(tsdf_map.query(torch.tensor([[0.0, 0.0, 2.0]]))["tsdf"]).all()
