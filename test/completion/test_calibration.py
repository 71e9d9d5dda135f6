"""Calibration of the occupancy probability: Platt fit, reliability, threshold choice."""

import numpy as np

import torch

from ssr_ros.completion_calibration import (SWEEP, CalibrationSamples, auc, choose_threshold, fit_logistic, fit_platt,
                                            precision_bound, reliability_table)
from ssr_ros.completion.contract import Calibration, ModelContract
from ssr_ros.completion.gating import SURFACE_FEATURES, GateSettings, gate


def test_platt_fit_recovers_a_known_logistic_model():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 20000)
    p = 1 / (1 + np.exp(-(4.0 * x - 0.5)))
    y = (rng.uniform(size=x.size) < p).astype(float)
    scale, bias = fit_platt(x, y)
    assert abs(scale - 4.0) < 0.25 and abs(bias + 0.5) < 0.1
    table = reliability_table(1 / (1 + np.exp(-(scale * x + bias))), y)
    assert all(abs(row["predicted"] - row["observed"]) < 0.05 for row in table if row["count"] > 500)


def test_degenerate_samples_keep_the_default_calibration():
    assert fit_platt(np.zeros(0), np.zeros(0)) == fit_platt(np.ones(5), np.ones(5))


def test_threshold_is_the_smallest_reaching_the_target_or_one():
    # precision of the predicted vertices rises with the swept confidence; enough vertices everywhere
    vertices = {t: 1000 for t in SWEEP}
    correct = {t: int(1000 * min(1.0, 0.6 + 0.3 * t)) for t in SWEEP}
    samples = CalibrationSamples(np.zeros(0), np.zeros(0), vertices, correct)
    threshold, curve = choose_threshold(samples, 0.85)
    first = next(row for row in curve if row["precision"] >= 0.85)
    assert threshold == first["threshold"] and 0.5 < threshold < 1.0
    assert all(row["precision"] < 0.85 for row in curve if row["threshold"] < threshold)
    never = CalibrationSamples(np.zeros(0), np.zeros(0), vertices, {t: 100 for t in SWEEP})
    assert choose_threshold(never, 0.85)[0] == 1.0
    too_few = CalibrationSamples(np.zeros(0), np.zeros(0), {t: 10 for t in SWEEP}, {t: 10 for t in SWEEP})
    assert choose_threshold(too_few, 0.85)[0] == 1.0
    # a flat curve that touches the target at one threshold, below it again higher up: noise, not a threshold
    flat = {t: 830 for t in SWEEP}
    flat[0.98], flat[0.99] = 850, 730
    fluke = CalibrationSamples(np.zeros(0), np.zeros(0), vertices, flat)
    assert choose_threshold(fluke, 0.85)[0] == 1.0
    # thresholds with too few vertices to judge neither pass nor fail the ones below them
    sparse_top = dict(vertices)
    sparse_top[0.99] = 20
    topped = CalibrationSamples(np.zeros(0), np.zeros(0), sparse_top, {**correct, 0.99: 5})
    assert choose_threshold(topped, 0.85)[0] == threshold


def test_a_threshold_must_hold_on_resamples_of_the_rooms_not_only_pooled():
    assert precision_bound([(1000, 900)] * 6) == 0.9
    # five easy rooms and a hard one: pooled 0.875, but a resample with the hard room twice is not
    rooms = [(1000, 900)] * 5 + [(1000, 750)]
    assert 0.83 < precision_bound(rooms) < 0.87 and np.isnan(precision_bound([(0, 0), (0, 0)]))
    per_room = [{t: (1000, 900) for t in SWEEP} for _ in range(5)] + [{t: (1000, int(1000 * (0.6 + 0.3 * t))) for t in SWEEP}]
    pooled = CalibrationSamples(np.zeros(0), np.zeros(0), {t: 6000 for t in SWEEP},
                                {t: sum(c[t][1] for c in per_room) for t in SWEEP})
    alone, _ = choose_threshold(pooled, 0.85)
    pooled.room_counts = per_room
    bounded, curve = choose_threshold(pooled, 0.85)
    assert alone == 0.0 and bounded > alone
    assert all(row["precision_bound"] >= 0.85 for row in curve if row["threshold"] >= bounded)


def test_logistic_fit_recovers_known_weights_on_raw_features():
    rng = np.random.default_rng(1)
    features = np.stack([rng.uniform(0, 3, 30000), rng.normal(5.0, 2.0, 30000), np.full(30000, 4.0)], axis=1)
    logit = -1.5 * features[:, 0] + 0.8 * features[:, 1] - 2.0
    y = rng.uniform(size=len(logit)) < 1 / (1 + np.exp(-logit))
    w = fit_logistic(features, y, l2=0.0)
    assert np.allclose(w[:2], [-1.5, 0.8], atol=0.12) and abs(w[3] + 2.0) < 0.4
    assert w[2] == 0.0  # a constant column carries no information
    score = features @ w[:-1] + w[-1]
    assert auc(score, y) > 0.85 and auc(-score, y) < 0.15 and auc(score, np.ones_like(y)) is None


def _room_with_a_hole():
    """A 24^3 region: observed floor at z = 4 (with a hole), seen-free space above it; the
    network predicts the floor through the hole and a floating slab at z = 14."""
    shape = (24, 24, 24)
    v, trunc = 0.05, 0.2
    z = torch.arange(24, dtype=torch.float32).view(1, 1, 24).expand(shape)
    floor_tsdf = (z - 4.0) * v
    observed = (z >= 2) & (z <= 6)
    observed[8:16, 8:16, :] = False  # the hole in the scan
    free = (z > 6) & ~observed
    free[8:16, 8:16, 5:12] = False
    tsdf = floor_tsdf.clone()
    slab = torch.zeros(shape, dtype=torch.bool)
    slab[2:22, 2:22, 14] = True
    tsdf[slab] = 0.0
    free[slab] = False
    return tsdf, observed, floor_tsdf, free, v, trunc, slab


def test_surface_confidence_uses_the_fitted_features_and_decides_what_is_kept():
    tsdf, observed, observed_tsdf, free, v, trunc, slab = _room_with_a_hole()
    settings = GateSettings(0.0, 1.0, 0, 1.5)  # near/enclosure open: the confidence decides
    open_gate = gate(tsdf, observed, observed_tsdf, free, v, trunc, Calibration(), settings, with_features=True)
    assert set(open_gate.features) == set(SURFACE_FEATURES)
    hole = torch.zeros_like(slab)
    hole[8:16, 8:16, 4] = True
    assert open_gate.kept_surface[hole].all() and open_gate.kept_surface[slab & ~observed].any()
    # a calibration that trusts surface only close to observed surface
    weights = [0.0] * len(SURFACE_FEATURES) + [4.0]
    weights[SURFACE_FEATURES.index("distance_observed")] = -3.0
    calibration = Calibration(surface_features=SURFACE_FEATURES, surface_weights=tuple(weights))
    strict = GateSettings(0.5, 1.0, 0, 1.5)
    result = gate(tsdf, observed, observed_tsdf, free, v, trunc, calibration, strict)
    assert result.kept_surface[hole].any()
    assert not result.kept_surface[slab].any()
    assert (result.surface_confidence[hole] > 0.5).any() and (result.surface_confidence[slab] < 0.5).all()
    # the calibration travels with the model's contract
    contract = ModelContract(0.05, 0.2, 32, 21, calibration=calibration)
    assert ModelContract.from_dict(contract.to_dict()).calibration == calibration


def test_the_threshold_sweep_judges_what_the_pipeline_writes(tmp_path):
    """The calibration must count the predicted vertices a user's map gets: the same chunks (on
    the pipeline's chunk grid, where a floor falls anywhere in a chunk), the same gate, the same
    write-back. A room completed by ``complete(everything=True)`` gives the sweep's counts."""
    from ssr_ros.completion.inference import CompletionConfig, gate_settings, inference_symmetries, model_calibration
    from ssr_ros.completion.layout import LayoutConfig
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.completion.weights import default_weights_path, load_model
    from ssr_ros.completion_calibration import MESH_THRESHOLD, _predicted_vertex_counts, room_samples
    from ssr_ros.completion_evaluation import EvaluationConfig
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    torch.manual_seed(0)
    data = EvaluationConfig(seeds=[1500], frames_per_scene=8, image_width=80, image_height=60).validate()
    model = load_model(default_weights_path())
    calibration = model_calibration(model)
    completion = CompletionConfig(weights=str(default_weights_path()), min_confidence=0.8)  # run even if withheld
    settings = gate_settings(completion, calibration)
    _, room = room_samples(model, 1500, data, settings, tmp_path, symmetries=inference_symmetries(completion, calibration))
    swept = _predicted_vertex_counts(room, settings, calibration)

    pipeline = MappingPipeline(PipelineConfig(map=data.map, completion=completion, layout=LayoutConfig(type="none")))
    for frame in synthetic_sequence(1500, data)[1]:
        pipeline.integrate(frame)
    pipeline.complete(everything=True)
    mesh = pipeline.map.mesh()
    vertices = mesh.vertices[mesh.predicted]
    distance, _ = room.gt_tree.query(vertices)
    assert swept[0] > 50
    assert swept == (len(vertices), int((distance <= MESH_THRESHOLD).sum()))
