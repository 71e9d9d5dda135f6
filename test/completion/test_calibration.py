"""Calibration of the occupancy probability: Platt fit, reliability, threshold choice."""

import numpy as np

from ssr_ros.completion.calibration import choose_threshold, fit_platt, reliability_table


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
    probability = np.linspace(0.5, 1.0, 1000, endpoint=False)
    correct = probability > 0.7  # precision rises with the threshold
    threshold, curve = choose_threshold(probability, correct, 0.85)
    kept = probability >= threshold
    assert correct[kept].mean() >= 0.85
    lower = [row for row in curve if row["threshold"] < threshold]
    assert lower and all(row["precision"] < 0.85 for row in lower)
    none, _ = choose_threshold(probability, np.zeros(1000, bool), 0.85)
    assert none == 1.0
