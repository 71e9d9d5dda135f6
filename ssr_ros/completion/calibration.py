"""Calibrating the completion network's occupancy probability on held-out generated rooms.

For each room the full sequence is fused through the mapping pipeline (so the map holds
what it holds online, seen-free space included) and the network predicts the whole room.

- Every voxel the write-back gate could write (unknown to the map, near observed surface,
  enclosed by what the cameras saw) is a sample of (predicted TSDF, ground-truth occupancy);
  ``P(occupied) = sigmoid(scale * (-tsdf / truncation) + bias)`` is fitted to them (Platt
  scaling), with a reliability table to show how well it holds.
- The confidence threshold is chosen on the map a user gets: for a sweep of thresholds the
  gated predictions are written into a copy of the room's map, the map is meshed, and the
  vertices that come from predicted voxels are checked against the room's GT mesh (within
  5 cm). The threshold is the smallest at which ``target_precision`` of them are (pooled
  over the rooms). If none reaches it the threshold is 1: nothing is written, and the report
  says which precision was reached.

Calibration rooms must be neither training nor evaluation rooms.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ssr_ros.completion.contract import Calibration
from ssr_ros.completion.gating import GateSettings, gate

SWEEP = tuple(float(x) for x in np.round(np.linspace(-0.2, 1.0, 13), 3))
"""Thresholds on x = -tsdf / truncation swept per room (P(occupied) grows with x)."""
MESH_THRESHOLD = 0.05
"""A predicted vertex is right when a GT surface lies this close, metres (the evaluation's 5 cm)."""


@dataclass
class CalibrationSamples:
    """x = -tsdf / truncation of every gate candidate and its GT occupancy; per swept threshold on
    x, the predicted mesh vertices written and how many of them lie on the GT surface."""

    x: np.ndarray
    occupied: np.ndarray
    vertices: dict = field(default_factory=dict)
    correct: dict = field(default_factory=dict)

    @staticmethod
    def concatenate(parts: Sequence["CalibrationSamples"]) -> "CalibrationSamples":
        return CalibrationSamples(
            np.concatenate([p.x for p in parts]), np.concatenate([p.occupied for p in parts]),
            {t: sum(p.vertices[t] for p in parts) for t in SWEEP},
            {t: sum(p.correct[t] for p in parts) for t in SWEEP},
        )


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _predicted_vertex_counts(tsdf_map, prediction, threshold_x: float, settings: GateSettings, gt_tree,
                             workdir: Path) -> tuple[int, int]:
    """Write what the gate keeps at ``x >= threshold_x`` into a copy of the map (saved in
    ``workdir``), mesh it, return (predicted vertices, those within MESH_THRESHOLD of the GT surface).

    The sweep runs the gate itself with the default calibration, whose probability grows with x,
    so its threshold ``sigmoid(scale * threshold_x + bias)`` keeps exactly ``x >= threshold_x``.
    """
    import dataclasses

    from ssr_ros.completion.inference import apply_gate, write_predictions
    from ssr_ros.map.semantic_tsdf import SemanticTSDF

    sweep = Calibration()
    threshold = float(_sigmoid(sweep.scale * threshold_x + sweep.bias))
    gated = apply_gate(prediction, dataclasses.replace(settings, min_confidence=threshold), sweep)
    copy = SemanticTSDF.load(workdir / "room.ssrmap", tsdf_map.device)
    write_predictions(copy, gated)
    mesh = copy.mesh()
    vertices = mesh.vertices[mesh.predicted]
    if len(vertices) == 0:
        return 0, 0
    distance, _ = gt_tree.query(vertices)
    return int(len(vertices)), int((distance <= MESH_THRESHOLD).sum())


def room_samples(model: torch.nn.Module, seed: int, data, settings: GateSettings, batch_size: int = 4) -> CalibrationSamples:
    """Samples of one generated room (``data``: a SceneDataConfig-like capture description)."""
    from scipy.spatial import cKDTree

    from ssr_ros.completion.inference import chunk_origins, crop, predict_chunks
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.evaluation.mesh import sample_surface
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    scene, sequence = synthetic_sequence(seed, data)
    pipeline = MappingPipeline(PipelineConfig(map=data.map), model=None)
    for frame in sequence:
        pipeline.integrate(frame)
    voxel = data.map.voxel_size
    gt = scene.gt_volume(voxel)
    lo = np.asarray(gt.origin_voxel, dtype=np.int64)
    hi = lo + np.asarray(gt.sdf.shape)
    contract = model.contract
    origins = chunk_origins(lo.tolist(), hi.tolist(), contract.chunk_size, 8)
    prediction = crop(predict_chunks(model, pipeline.map, origins, contract.chunk_size, 8, batch_size), lo.tolist(), hi.tolist())
    open_gate = GateSettings(0.0, settings.max_distance, settings.min_enclosure, settings.enclosure_radius)
    result = gate(prediction.tsdf, prediction.observed, prediction.observed_tsdf, prediction.free, voxel,
                  prediction.model_truncation, Calibration(), open_gate)
    candidates = result.keep & torch.as_tensor(gt.in_room, device=result.keep.device)
    gt_mesh = scene.gt_mesh()
    gt_tree = cKDTree(sample_surface(gt_mesh.vertices, gt_mesh.faces, 200_000, seed=1))
    vertices, correct = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        pipeline.map.save(workdir / "room.ssrmap")
        for t in SWEEP:
            vertices[t], correct[t] = _predicted_vertex_counts(pipeline.map, prediction, t, open_gate, gt_tree, workdir)
    x = (-prediction.tsdf / prediction.model_truncation)[candidates]
    return CalibrationSamples(
        x=x.cpu().numpy().astype(np.float64),
        occupied=torch.as_tensor(gt.occupied, device=candidates.device)[candidates].cpu().numpy(),
        vertices=vertices, correct=correct,
    )


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


def choose_threshold(samples: CalibrationSamples, scale: float, bias: float, target: float,
                     min_vertices: int = 100) -> tuple[float, list[dict]]:
    """Smallest probability threshold whose predicted vertices reach ``target`` precision (1.0 if none).

    The sweep is on x = -tsdf / truncation; each swept x is reported as the probability the
    fitted calibration gives it.
    """
    curve = []
    chosen = 1.0
    for t in SWEEP:
        probability = float(_sigmoid(scale * t + bias))
        count = int(samples.vertices[t])
        precision = samples.correct[t] / count if count else float("nan")
        curve.append({"x": t, "threshold": round(probability, 4), "predicted_vertices": count,
                      "precision": round(precision, 4) if count else None})
        if chosen == 1.0 and count >= min_vertices and precision >= target:
            chosen = round(probability, 4)
    return chosen, curve


def calibrate(model: torch.nn.Module, seeds: Sequence[int], data, settings: GateSettings, target_precision: float = 0.85,
              progress: bool = False) -> tuple[Calibration, dict]:
    """Fit the model's calibration on rooms ``seeds``; returns it and a report (tables, counts)."""
    parts = []
    for seed in seeds:
        parts.append(room_samples(model, int(seed), data, settings))
        if progress:
            print(f"calibration room {seed}: {parts[-1].x.size} candidate voxels", flush=True)
    samples = CalibrationSamples.concatenate(parts)
    scale, bias = fit_platt(samples.x, samples.occupied.astype(np.float64))
    if scale <= 0:  # the TSDF does not order occupancy at all: nothing to trust
        scale, bias = Calibration().scale, Calibration().bias
    probability = _sigmoid(scale * samples.x + bias)
    threshold, curve = choose_threshold(samples, scale, bias, target_precision)
    calibration = Calibration(scale=round(scale, 4), bias=round(bias, 4), min_confidence=threshold,
                              target_precision=target_precision,
                              fitted_on=f"generated rooms {', '.join(str(s) for s in seeds)}")
    reached = [row["precision"] for row in curve if row["predicted_vertices"] >= 100]
    report = {
        "seeds": [int(s) for s in seeds], "candidate_voxels": int(samples.x.size),
        "scale": calibration.scale, "bias": calibration.bias,
        "min_confidence": threshold, "target_precision": target_precision,
        "best_precision": max(reached) if reached else None,
        "reliability": reliability_table(probability, samples.occupied.astype(np.float64)),
        "precision_curve": curve,
    }
    return calibration, report
