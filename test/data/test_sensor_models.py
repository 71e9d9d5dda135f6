"""Depth-sensor and 2D-predictor noise models, and the sequence that applies them."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.data.synthetic import (
    DepthNoiseConfig,
    LabelNoiseConfig,
    SequenceConfig,
    SyntheticSequence,
    TrajectoryConfig,
    apply_depth_noise,
    apply_label_noise,
    generate_scene,
)
from ssr_ros.taxonomy import ClassTaxonomy

QUIET = dict(grazing_cos=0.0, edge_dropout=0.0, random_dropout=0.0)


def test_disabled_models_return_the_input():
    depth = np.full((10, 10), 2.0, np.float32)
    assert np.array_equal(apply_depth_noise(depth, np.ones_like(depth), DepthNoiseConfig(enabled=False), np.random.default_rng(0)), depth)
    labels = np.arange(100).reshape(10, 10) % 7
    out = apply_label_noise(labels, labels, LabelNoiseConfig(enabled=False), np.random.default_rng(0), ClassTaxonomy.load())
    assert np.array_equal(out, labels)


@pytest.mark.parametrize("z", [1.0, 3.0])
def test_axial_noise_grows_with_depth_as_configured(z):
    config = DepthNoiseConfig(**QUIET)
    depth = np.full((200, 200), z, np.float32)
    noisy = apply_depth_noise(depth, np.ones_like(depth), config, np.random.default_rng(1))
    expected = config.sigma_base + config.sigma_quadratic * (z - 0.4) ** 2
    assert np.std(noisy - depth) == pytest.approx(expected, rel=0.05)
    assert abs(np.mean(noisy - depth)) < expected / 20


def test_range_grazing_and_edge_dropouts():
    depth = np.full((100, 100), 2.0, np.float32)
    depth[:, 50:] = 3.0  # a step edge between columns 49 and 50
    depth[:10] = 6.0  # beyond max_range
    cos = np.ones_like(depth)
    cos[80:] = 0.05  # grazing rows
    config = DepthNoiseConfig(sigma_base=0.0, sigma_quadratic=0.0, random_dropout=0.0, edge_dropout=1.0)
    noisy = apply_depth_noise(depth, cos, config, np.random.default_rng(2))
    assert np.all(noisy[:10] == 0)
    assert np.all(noisy[10:80, 49:51] == 0) and np.all(noisy[11:80, 51:99] == 3.0) and np.all(noisy[11:80, 1:48] == 2.0)
    dropped = np.mean(noisy[81:, 1:48] == 0)
    assert dropped == pytest.approx((config.grazing_cos - 0.05) / config.grazing_cos, abs=0.05)


def _label_scene():
    labels = np.full((120, 160), 1, np.int32)  # wall
    instances = np.full((120, 160), 3, np.int32)
    labels[60:, :] = 2  # floor
    instances[60:, :] = 1
    labels[40:100, 30:90] = 7  # a table
    instances[40:100, 30:90] = 10
    labels[20:25, 120:125] = 11  # a small picture (25 px)
    instances[20:25, 120:125] = 11
    return labels, instances


def test_boundary_errors_stay_near_boundaries():
    labels, instances = _label_scene()
    config = LabelNoiseConfig(confusion_probability=0.0, miss_probability=0.0, boundary_shift=0.02)
    out = apply_label_noise(labels, instances, config, np.random.default_rng(3), ClassTaxonomy.load())
    changed = out != labels
    assert 0.005 < changed.mean() < 0.2
    assert not changed[70:90, 45:75].any(), "the inside of the table stays right"
    assert np.array_equal(out, apply_label_noise(labels, instances, config, np.random.default_rng(3), ClassTaxonomy.load()))


def test_confusions_pick_plausible_classes_and_small_objects_get_missed():
    taxonomy = ClassTaxonomy.load()
    labels, instances = _label_scene()
    config = LabelNoiseConfig(boundary_shift=0.0, confusion_probability=1.0, miss_probability=1.0, small_object_fraction=0.01)
    out = apply_label_noise(labels, instances, config, np.random.default_rng(4), taxonomy)
    table = out[instances == 10]
    assert len(np.unique(table)) == 1 and taxonomy.names[table[0]] in ("desk", "counter")
    assert np.all(out[20:25, 120:125] == 1), "the missed picture takes the wall's label around it"
    assert np.all(out[instances == 1] == 2), "floor has no confusion listed"


def test_sequence_frames_are_reproducible_in_any_order():
    scene = generate_scene(6)
    config = SequenceConfig(width=48, height=36, trajectory=TrajectoryConfig(num_frames=6))
    a = SyntheticSequence(scene, config)
    b = SyntheticSequence(scene, config)
    late_first = b.view(4).frame
    frames = list(a)
    np.testing.assert_array_equal(frames[4].depth, late_first.depth)
    np.testing.assert_array_equal(frames[4].labels, late_first.labels)
    for f in frames:
        f.validate()
        assert f.labels.dtype == np.uint8 and f.frame_id == "camera_color_optical_frame"
        mm = f.depth * 1000
        assert np.allclose(mm, np.round(mm), atol=1e-3), "depth comes in whole millimetres like a 16UC1 driver"
    view = a.view(2)
    assert view.rendering.depth.shape == (36, 48) and (view.rendering.instance_ids > 0).all()
    assert not np.array_equal(view.frame.depth, view.rendering.depth), "the sensor model is on by default"
