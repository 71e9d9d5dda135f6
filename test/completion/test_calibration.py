"""Calibration of the occupancy probability: Platt fit, reliability, threshold choice."""

import numpy as np

from ssr_ros.completion.calibration import SWEEP, CalibrationSamples, choose_threshold, fit_platt, reliability_table


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
    # precision of the predicted vertices rises with the swept x; enough vertices everywhere
    vertices = {t: 1000 for t in SWEEP}
    correct = {t: int(1000 * min(1.0, 0.6 + 0.4 * max(t, 0.0))) for t in SWEEP}
    samples = CalibrationSamples(np.zeros(0), np.zeros(0), vertices, correct)
    threshold, curve = choose_threshold(samples, 4.0, 0.0, 0.85)
    first = next(row for row in curve if row["precision"] >= 0.85)
    assert threshold == first["threshold"] and 0.5 < threshold < 1.0
    assert all(row["precision"] < 0.85 for row in curve if row["threshold"] < threshold)
    never = CalibrationSamples(np.zeros(0), np.zeros(0), vertices, {t: 100 for t in SWEEP})
    assert choose_threshold(never, 4.0, 0.0, 0.85)[0] == 1.0
    too_few = CalibrationSamples(np.zeros(0), np.zeros(0), {t: 10 for t in SWEEP}, {t: 10 for t in SWEEP})
    assert choose_threshold(too_few, 4.0, 0.0, 0.85)[0] == 1.0
