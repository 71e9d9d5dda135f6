"""Calibrating the completion network's confidences on held-out generated rooms.

For each room the full sequence is fused through the mapping pipeline (so the map holds
what it holds online, seen-free space included) and the network predicts the chunks the
pipeline's ``complete(everything=True)`` would, on its chunk grid: what it predicts depends on
where a floor or a wall falls in a chunk, so the calibration judges what a user's map gets.

- Every voxel the write-back gate could write (unknown to the map, near observed surface,
  enclosed by what the cameras saw) is a sample of (predicted TSDF, ground-truth occupancy);
  ``P(occupied) = sigmoid(scale * (-tsdf / truncation) + bias)`` is fitted to them (Platt
  scaling), with a reliability table to show how well it holds.
- Every predicted *surface* voxel the gate could write is a sample of (its gate features,
  whether a ground-truth surface lies within one voxel of it, on the room's side: behind
  the walls and under the floor a prediction is wrong, as the evaluation judges it); a logistic model of
  ``P(surface right)`` is fitted to them (:func:`fit_logistic`). Its features say how well the
  prediction is anchored in what was seen (distance to observed surface, enclosure, observed
  surface and free space around it, predicted surface around it, depth inside).
- The confidence threshold is chosen on the map a user gets: for a sweep of thresholds on
  ``P(surface right)`` (each room judged by the surface model fitted on the other rooms) the
  gated predictions are written into a copy of the room's map, the map is meshed, and the vertices that come from predicted voxels are checked against the
  room's GT mesh (within 5 cm). The threshold is the smallest from which ``target_precision`` of
  them are at every higher threshold too, pooled over the rooms and in 90 % of resamples of the
  rooms (:func:`precision_bound`: the threshold must hold on rooms like these, not just on these;
  one hard room in six moves the precision by several points). If none reaches it the threshold
  is 1: nothing is written, and the report says which precision was reached.

Calibration rooms must be neither training nor evaluation rooms.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ssr_ros.completion.contract import Calibration
from ssr_ros.completion.gating import SURFACE_FEATURES, GateSettings, gate

SWEEP = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
"""Thresholds on the surface confidence swept per room."""
MESH_THRESHOLD = 0.05
"""A predicted vertex is right when a GT surface lies this close, metres (the evaluation's 5 cm)."""
SURFACE_LABEL_DISTANCE = 0.5
"""A predicted surface voxel is right when the GT surface lies within this many voxels of its centre
(passes through the voxel), closer to what the evaluation checks: mesh vertices within 5 cm. With a
whole voxel the most confident voxels were right by that label while the mesh vertices next to them
missed by 5-9 cm: the precision of the mesh fell again at the highest thresholds."""
BOUND_QUANTILE = 0.1
"""The threshold's precision must hold in all but this fraction of resamples of the calibration rooms."""


@dataclass
class CalibrationSamples:
    """x = -tsdf / truncation of every gate candidate and its GT occupancy; per predicted surface
    candidate its SURFACE_FEATURES (columns) and whether it is right; per swept threshold the
    predicted mesh vertices written and how many of them lie on the GT surface, pooled and per room
    (``room_counts``: per room a dict threshold -> (vertices, correct))."""

    x: np.ndarray
    occupied: np.ndarray
    vertices: dict = field(default_factory=dict)
    correct: dict = field(default_factory=dict)
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, len(SURFACE_FEATURES))))
    surface_right: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    room_counts: list = field(default_factory=list)

    @staticmethod
    def concatenate(parts: Sequence["CalibrationSamples"]) -> "CalibrationSamples":
        return CalibrationSamples(
            np.concatenate([p.x for p in parts]), np.concatenate([p.occupied for p in parts]),
            {t: sum(p.vertices.get(t, 0) for p in parts) for t in SWEEP},
            {t: sum(p.correct.get(t, 0) for p in parts) for t in SWEEP},
            np.concatenate([p.features for p in parts]), np.concatenate([p.surface_right for p in parts]),
            [counts for p in parts for counts in p.room_counts],
        )


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class CalibrationRoom:
    """One room's fused map (saved in ``workdir``), the network's prediction over it and the GT."""

    seed: int
    map_path: Path
    device: Any
    prediction: Any
    gt_tree: Any


def _predicted_vertex_counts(room: CalibrationRoom, settings: GateSettings, calibration: Calibration) -> tuple[int, int]:
    """Write what the gate keeps into a copy of the room's map, mesh it, return (predicted
    vertices, those within MESH_THRESHOLD of the GT surface)."""
    from ssr_ros.completion.inference import apply_gate, write_predictions
    from ssr_ros.map.semantic_tsdf import SemanticTSDF

    gated = apply_gate(room.prediction, settings, calibration)
    copy = SemanticTSDF.load(room.map_path, room.device)
    write_predictions(copy, gated)
    mesh = copy.mesh()
    vertices = mesh.vertices[mesh.predicted]
    if len(vertices) == 0:
        return 0, 0
    distance, _ = room.gt_tree.query(vertices)
    return int(len(vertices)), int((distance <= MESH_THRESHOLD).sum())


def room_samples(model: torch.nn.Module, seed: int, data, settings: GateSettings, workdir: Path,
                 batch_size: int = 4, symmetries: int = 1) -> tuple[CalibrationSamples, CalibrationRoom]:
    """Samples of one generated room (``data``: a SceneDataConfig-like capture description) and
    the room itself for the threshold sweep (its map saved in ``workdir``); the network averaged
    over ``symmetries`` chunk symmetries, as the pipeline will run it."""
    from scipy.spatial import cKDTree

    from ssr_ros.completion.inference import CompletionConfig, predict_chunks
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.evaluation.mesh import sample_surface
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    scene, sequence = synthetic_sequence(seed, data)
    contract = model.contract
    completion = CompletionConfig(chunk_size=contract.chunk_size)
    pipeline = MappingPipeline(PipelineConfig(map=data.map, completion=completion), model=None)
    for frame in sequence:
        pipeline.integrate(frame)
    voxel = data.map.voxel_size
    # The chunks the pipeline completes, on its chunk grid: where a floor or a wall falls in a
    # chunk changes what the network predicts there, so the threshold is chosen on those.
    prediction = predict_chunks(model, pipeline.map, pipeline.pending_chunk_origins(), contract.chunk_size,
                                completion.overlap, batch_size, symmetries=symmetries)
    lo = prediction.origin_voxel.cpu().numpy().astype(np.int64)
    shape = np.asarray(prediction.tsdf.shape)
    gt = scene.gt_volume(voxel, bounds=((lo + 1e-3) * voxel, (lo + shape - 1e-3) * voxel))
    open_gate = dataclasses.replace(settings, min_confidence=0.0)
    result = gate(prediction.tsdf, prediction.observed, prediction.observed_tsdf, prediction.free, voxel,
                  prediction.model_truncation, Calibration(), open_gate, with_features=True,
                  tsdf_spread=prediction.tsdf_spread)
    # Every voxel the gate could write is a sample, behind the walls and under the floor too
    # (the pipeline writes there as well); a surface is right only on the room's side.
    in_room = torch.as_tensor(gt.in_room, device=result.keep.device)
    candidates = result.keep
    surface_candidates = result.kept_surface
    gt_mesh = scene.gt_mesh()
    map_path = workdir / f"room_{seed}.ssrmap"
    pipeline.map.save(map_path)
    room = CalibrationRoom(int(seed), map_path, pipeline.map.device, prediction,
                           cKDTree(sample_surface(gt_mesh.vertices, gt_mesh.faces, 200_000, seed=1)))
    x = (-prediction.tsdf / prediction.model_truncation)[candidates]
    features = torch.stack([result.features[name][surface_candidates] for name in SURFACE_FEATURES], dim=1)
    right = (torch.as_tensor(np.abs(gt.sdf) <= SURFACE_LABEL_DISTANCE * voxel, device=candidates.device) & in_room)[surface_candidates]
    samples = CalibrationSamples(
        x=x.cpu().numpy().astype(np.float64),
        occupied=torch.as_tensor(gt.occupied, device=candidates.device)[candidates].cpu().numpy(),
        features=features.cpu().numpy().astype(np.float64), surface_right=right.cpu().numpy(),
    )
    return samples, room


def fit_logistic(features: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 100) -> np.ndarray:
    """Logistic regression of binary ``y`` on ``features`` (N, F) by Newton's method, on
    standardised columns with a small ridge; returns F weights then the bias, on the raw
    features (the standardisation folded in). Constant columns get weight 0."""
    features = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean, std = features.mean(axis=0), features.std(axis=0)
    varying = std > 1e-9
    z = np.where(varying, (features - mean) / np.where(varying, std, 1.0), 0.0)
    design = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    w = np.zeros(design.shape[1])
    ridge = l2 * len(z) * np.eye(len(w))
    ridge[-1, -1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(design @ w)
        gradient = design.T @ (p - y) + ridge @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    scale = np.where(varying, 1.0 / np.where(varying, std, 1.0), 0.0)
    weights = w[:-1] * scale
    bias = w[-1] - float((w[:-1] * scale * mean).sum())
    return np.concatenate([weights, [bias]])


def auc(score: np.ndarray, label: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for binary ``label`` (None if one class is absent)."""
    from scipy.stats import rankdata

    label = np.asarray(label, dtype=bool)
    positives, negatives = int(label.sum()), int((~label).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def fit_platt(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Logistic regression of binary ``y`` on scalar ``x`` by Newton's method: (scale, bias)."""
    if x.size == 0 or y.all() or not y.any():
        return Calibration().scale, Calibration().bias
    w = np.zeros(2)
    design = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - y)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def reliability_table(probability: np.ndarray, outcome: np.ndarray, bins: int = 10) -> list[dict]:
    """Per probability bin: count, mean predicted probability and observed frequency."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (probability >= low) & ((probability < high) | (high == 1.0))
        if inside.any():
            rows.append({"bin": f"{low:.1f}-{high:.1f}", "count": int(inside.sum()),
                         "predicted": round(float(probability[inside].mean()), 3),
                         "observed": round(float(outcome[inside].mean()), 3)})
    return rows


def _fittable(labels: np.ndarray) -> bool:
    return len(labels) > 0 and bool(labels.any()) and not bool(labels.all())


def _with_surface_model(calibration: Calibration, features: np.ndarray, right: np.ndarray) -> Calibration:
    weights = fit_logistic(features, right)
    return dataclasses.replace(calibration, surface_features=SURFACE_FEATURES,
                               surface_weights=tuple(round(float(w), 5) for w in weights))


def precision_bound(room_counts: Sequence[tuple[int, int]], quantile: float = BOUND_QUANTILE, resamples: int = 2000,
                    seed: int = 0) -> float:
    """The ``quantile`` of the pooled precision (correct / vertices) over bootstrap resamples of the
    rooms (``room_counts``: per room (vertices, correct)); NaN when no room has vertices."""
    counts = np.asarray(room_counts, dtype=np.float64).reshape(-1, 2)
    if counts[:, 0].sum() <= 0:
        return float("nan")
    picks = np.random.default_rng(seed).integers(0, len(counts), size=(resamples, len(counts)))
    vertices, correct = counts[picks, 0].sum(1), counts[picks, 1].sum(1)
    precision = correct[vertices > 0] / vertices[vertices > 0]
    return float(np.quantile(precision, quantile))


def choose_threshold(samples: CalibrationSamples, target: float, min_vertices: int = 100) -> tuple[float, list[dict]]:
    """Smallest swept surface-confidence threshold from which the predicted vertices reach
    ``target`` precision at every higher threshold too (those with at least ``min_vertices``),
    pooled over the rooms and, with two rooms or more (``samples.room_counts``), in all but
    :data:`BOUND_QUANTILE` of resamples of the rooms; 1.0 if none. A confidence that is worth
    trusting is more precise the higher it is: a single threshold that touches the target
    between thresholds that do not (a few hundred vertices of a flat curve) is noise, and
    held-out rooms do not repeat it."""
    curve = []
    for t in SWEEP:
        count = int(samples.vertices[t])
        precision = samples.correct[t] / count if count else float("nan")
        row = {"threshold": t, "predicted_vertices": count, "precision": round(precision, 4) if count else None}
        if len(samples.room_counts) >= 2:
            bound = precision_bound([counts.get(t, (0, 0)) for counts in samples.room_counts])
            row["precision_bound"] = round(bound, 4) if count else None
        curve.append(row)
    chosen = 1.0
    for row in reversed(curve):
        if row["predicted_vertices"] < min_vertices:
            continue  # too few vertices to judge; neither for nor against
        if row["precision"] < target or row.get("precision_bound", 1.0) < target:
            break
        chosen = row["threshold"]
    return chosen, curve


def calibrate(model: torch.nn.Module, seeds: Sequence[int], data, settings: GateSettings, target_precision: float = 0.85,
              progress: bool = False, symmetries: int = 1) -> tuple[Calibration, dict]:
    """Fit the model's calibration on rooms ``seeds`` with the network averaged over ``symmetries``
    chunk symmetries (stored with it: the pipeline runs the network so); returns it and a report
    (tables, counts)."""
    with tempfile.TemporaryDirectory() as tmp:
        parts, rooms = [], []
        for seed in seeds:
            part, room = room_samples(model, int(seed), data, settings, Path(tmp), symmetries=symmetries)
            parts.append(part)
            rooms.append(room)
            if progress:
                print(f"calibration room {seed}: {part.x.size} candidate voxels, {len(part.surface_right)} surface", flush=True)
        samples = CalibrationSamples.concatenate(parts)
        scale, bias = fit_platt(samples.x, samples.occupied.astype(np.float64))
        if scale <= 0:  # the TSDF does not order occupancy at all: nothing to trust
            scale, bias = Calibration().scale, Calibration().bias
        fitted = Calibration(scale=round(scale, 4), bias=round(bias, 4), symmetries=symmetries)
        if _fittable(samples.surface_right):
            fitted = _with_surface_model(fitted, samples.features, samples.surface_right)
        # The threshold is swept with each room judged by a surface model fitted on the *other*
        # rooms (leave one room out), so the precision it is chosen for is not measured on the
        # samples the model was fitted to.
        for index, room in enumerate(rooms):
            judge = fitted
            others = [p for i, p in enumerate(parts) if i != index]
            if others and fitted.surface_features:
                rest = CalibrationSamples.concatenate(others)
                if _fittable(rest.surface_right):
                    judge = _with_surface_model(fitted, rest.features, rest.surface_right)
            counts = {}
            for t in SWEEP:
                room_settings = dataclasses.replace(settings, min_confidence=t)
                v, c = _predicted_vertex_counts(room, room_settings, judge)
                samples.vertices[t] = samples.vertices.get(t, 0) + v
                samples.correct[t] = samples.correct.get(t, 0) + c
                counts[t] = (v, c)
            samples.room_counts.append(counts)
            if progress:
                print(f"calibration room {room.seed}: threshold sweep done", flush=True)
    threshold, curve = choose_threshold(samples, target_precision)
    calibration = dataclasses.replace(fitted, min_confidence=threshold, target_precision=target_precision,
                                      fitted_on=f"generated rooms {', '.join(str(s) for s in seeds)}")
    probability = _sigmoid(scale * samples.x + bias)
    reached = [row["precision"] for row in curve if row["predicted_vertices"] >= 100]
    columns = {name: torch.from_numpy(samples.features[:, i]) for i, name in enumerate(SURFACE_FEATURES)}
    surface_probability = calibration.surface_probability(columns)
    if surface_probability is not None:
        surface_probability = surface_probability.double().numpy()
    report = {
        "seeds": [int(s) for s in seeds], "symmetries": int(symmetries), "candidate_voxels": int(samples.x.size),
        "scale": calibration.scale, "bias": calibration.bias,
        "surface_features": list(calibration.surface_features), "surface_weights": list(calibration.surface_weights),
        "surface_candidates": int(len(samples.surface_right)),
        "surface_right_fraction": round(float(samples.surface_right.mean()), 4) if len(samples.surface_right) else None,
        "surface_auc": None if surface_probability is None else auc(surface_probability, samples.surface_right),
        "min_confidence": threshold, "target_precision": target_precision,
        "best_precision": max(reached) if reached else None,
        "reliability": reliability_table(probability, samples.occupied.astype(np.float64)),
        "surface_reliability": [] if surface_probability is None else reliability_table(surface_probability, samples.surface_right.astype(np.float64)),
        "precision_curve": curve,
    }
    return calibration, report
