"""Calibrating the completion network's occupancy probability on held-out generated rooms.

For each room the full sequence is fused through the mapping pipeline (so the map holds
what it holds online, seen-free space included), the network predicts the whole room, and
every voxel the write-back gate could write (unknown to the map, near observed surface,
enclosed by what the cameras saw) becomes a sample: its predicted TSDF and whether the
room's exact ground truth has it occupied. Then

- a logistic map ``P(occupied) = sigmoid(scale * (-tsdf / truncation) + bias)`` is fitted
  to those samples (Platt scaling), with a reliability table to show how well it holds;
- the confidence threshold is the smallest probability at which the predicted *surface*
  voxels (kept surface voxels next to predicted or observed free space, the ones that turn
  into mesh) lie within 1.5 voxels of the ground-truth surface for ``target_precision`` of
  them. If no threshold reaches it, the threshold is 1: nothing is written, and the report
  says which precision was reached.

Calibration rooms must be neither training nor evaluation rooms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ssr_ros.completion.contract import Calibration
from ssr_ros.completion.gating import GateSettings, dilate, gate

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.5, 1.0, 0.02))


@dataclass
class CalibrationSamples:
    """Per-voxel samples: x = -tsdf / truncation; occupied = GT occupancy; surface = predicted
    surface voxel that meshes; correct = within 1.5 voxels of the GT surface."""

    x: np.ndarray
    occupied: np.ndarray
    surface: np.ndarray
    correct: np.ndarray

    @staticmethod
    def concatenate(parts: Sequence["CalibrationSamples"]) -> "CalibrationSamples":
        return CalibrationSamples(*[np.concatenate([getattr(p, f) for p in parts]) for f in ("x", "occupied", "surface", "correct")])


def room_samples(model: torch.nn.Module, seed: int, data, settings: GateSettings, batch_size: int = 4) -> CalibrationSamples:
    """Samples of one generated room (``data``: a SceneDataConfig-like capture description)."""
    from ssr_ros.completion.inference import chunk_origins, crop, predict_chunks
    from ssr_ros.completion.scenes import synthetic_sequence
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
    predicted_free = result.keep & ~result.surface
    meshing = result.kept_surface & dilate(predicted_free | prediction.free | (prediction.observed & (prediction.observed_tsdf > 0.5 * voxel)), 1)
    sdf = torch.as_tensor(gt.sdf, device=candidates.device)
    x = (-prediction.tsdf / prediction.model_truncation)[candidates]
    return CalibrationSamples(
        x=x.cpu().numpy().astype(np.float64),
        occupied=torch.as_tensor(gt.occupied, device=candidates.device)[candidates].cpu().numpy(),
        surface=meshing[candidates].cpu().numpy(),
        correct=(sdf.abs() <= 1.5 * voxel)[candidates].cpu().numpy(),
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


def choose_threshold(probability: np.ndarray, correct: np.ndarray, target: float, min_count: int = 50) -> tuple[float, list[dict]]:
    """Smallest threshold whose kept surface voxels reach ``target`` precision (1.0 if none)."""
    curve = []
    chosen = 1.0
    for t in THRESHOLDS:
        kept = probability >= t
        count = int(kept.sum())
        precision = float(correct[kept].mean()) if count else float("nan")
        curve.append({"threshold": t, "surface_voxels": count, "precision": round(precision, 4)})
        if chosen == 1.0 and count >= min_count and precision >= target:
            chosen = t
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
    probability = 1.0 / (1.0 + np.exp(-(scale * samples.x + bias)))
    surface_p = probability[samples.surface]
    threshold, curve = choose_threshold(surface_p, samples.correct[samples.surface], target_precision)
    calibration = Calibration(scale=round(scale, 4), bias=round(bias, 4), min_confidence=threshold,
                              target_precision=target_precision,
                              fitted_on=f"generated rooms {', '.join(str(s) for s in seeds)}")
    reached = max((row["precision"] for row in curve if row["surface_voxels"] >= 50), default=float("nan"))
    report = {
        "seeds": [int(s) for s in seeds], "candidate_voxels": int(samples.x.size),
        "surface_voxels": int(samples.surface.sum()), "scale": calibration.scale, "bias": calibration.bias,
        "min_confidence": threshold, "target_precision": target_precision, "best_precision": reached,
        "reliability": reliability_table(probability, samples.occupied.astype(np.float64)),
        "precision_curve": curve,
    }
    return calibration, report
