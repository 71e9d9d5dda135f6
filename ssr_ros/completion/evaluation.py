"""Held-out evaluation of completion: fusion only vs fusion + network, on generated rooms.

For every seed: generate the room and its full RGB-D sequence, fuse *all* frames into the
map (what the map holds online), run the network over the whole room in overlapping chunks
and write its predictions back (observed voxels keep their fused values), then score both
states against the generator's exact ground truth with ``ssr_ros.evaluation``:

- completion IoU / precision / recall of occupied voxels (``tsdf <= voxel/2``, the same
  rule as the ground truth's ``sdf <= voxel/2``) on the room's *unobserved* voxels (where
  completion has to predict) and on observed ones;
- semantic mIoU / mAcc of the voxel labels on ground-truth surfaces, observed and
  unobserved (a voxel without a label counts as a miss);
- chunk latency of the network on this machine's CPU.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ssr_ros.config import param, validate_config


@dataclass
class EvaluationConfig:
    """Which held-out scenes and how they are captured (match the training data config)."""

    seeds: list = param([1000, 1001, 1002], "held-out scene seeds (never used in training)")
    frames_per_scene: int = param(40, "frames per sequence, all fused", low=1, high=100000)
    frame_rate: float = param(1.5, "frames per second along the path", low=0.01, high=1000.0)
    image_width: int = param(160, "image width, pixels", low=8, high=4096)
    image_height: int = param(120, "image height, pixels", low=8, high=4096)
    voxel_size: float = param(0.05, "voxel edge, metres", low=0.005, high=1.0)
    truncation_voxels: float = param(3.0, "TSDF truncation, voxels", low=1.0, high=16.0)
    chunk_size: int = param(32, "inference chunk side, voxels", low=16, high=256)
    overlap: int = param(8, "inference chunk overlap, voxels", low=0, high=128)
    batch_size: int = param(2, "chunks per network batch", low=1, high=256)

    def validate(self) -> "EvaluationConfig":
        return validate_config(self)


def _labels(semantics: torch.Tensor) -> np.ndarray:
    """Argmax class of (X, Y, Z, N) probabilities, 0 where there is no evidence."""
    has = semantics.sum(-1) > 0
    return torch.where(has, semantics.argmax(-1), torch.zeros_like(has, dtype=torch.int64)).cpu().numpy()


def evaluate_seed(model: torch.nn.Module | None, seed: int, config: EvaluationConfig) -> dict:
    """Scores of fusion only and (if ``model``) fusion + network on one generated room."""
    from ssr_ros.completion.inference import predict_region, write_predictions
    from ssr_ros.completion.scenes import fuse, synthetic_sequence
    from ssr_ros.map.config import TSDFConfig
    from ssr_ros.evaluation.completion import completion_report
    from ssr_ros.evaluation.semantics import semantic_report

    scene, sequence = synthetic_sequence(seed, config)
    frames = list(sequence)
    tsdf_map = fuse(frames, TSDFConfig(voxel_size=config.voxel_size, truncation_voxels=config.truncation_voxels, max_depth=6.0))
    gt = scene.gt_volume(config.voxel_size)
    lo = np.asarray(gt.origin_voxel, dtype=np.int64)
    shape = gt.shape
    hi = lo + np.asarray(shape)
    fused = tsdf_map.extract_chunk(torch.as_tensor(lo), shape)
    observed = fused.observed.cpu().numpy()
    half = config.voxel_size / 2
    num_classes = fused.semantics.shape[-1]
    fusion_occupied = observed & (fused.tsdf.cpu().numpy() <= half)
    fusion_labels = np.where(observed, _labels(fused.semantics), 0)
    valid = gt.in_room
    surface = valid & gt.occupied
    result = {"seed": int(seed), "voxels_in_room": int(valid.sum()),
              "unobserved_fraction": round(float((valid & ~observed).sum() / max(valid.sum(), 1)), 4)}

    def scores(occupied: np.ndarray, labels: np.ndarray) -> dict:
        completion = completion_report(occupied, gt.occupied, observed, valid)
        semantics = semantic_report(labels, gt.class_ids, num_classes, observed, surface)
        out = {}
        for region in ("unobserved", "observed", "all"):
            out[f"{region}_iou"] = completion[region].iou
            out[f"{region}_precision"] = completion[region].precision
            out[f"{region}_recall"] = completion[region].recall
            out[f"{region}_miou"] = semantics[region].miou
            out[f"{region}_macc"] = semantics[region].macc
        return out

    result["fusion"] = scores(fusion_occupied, fusion_labels)
    if model is None:
        return result
    start = time.perf_counter()
    prediction = predict_region(model, tsdf_map, lo.tolist(), hi.tolist(), config.chunk_size, config.overlap, config.batch_size)
    result["region_seconds"] = round(time.perf_counter() - start, 2)
    write_predictions(tsdf_map, prediction)
    after = tsdf_map.extract_chunk(torch.as_tensor(lo), shape)
    # Observed voxels must keep their fused values.
    result["observed_unchanged"] = bool(
        torch.equal(after.tsdf[fused.observed], fused.tsdf[fused.observed]) and not bool(after.predicted[fused.observed].any())
    )
    predicted_tsdf = prediction.tsdf.cpu().numpy()
    predicted_labels = prediction.semantics_probs.argmax(-1).cpu().numpy()
    occupied = np.where(observed, fusion_occupied, predicted_tsdf <= half)
    labels = np.where(observed, fusion_labels, predicted_labels)
    result["network"] = scores(occupied, labels)
    return result


def chunk_latency(model: torch.nn.Module, chunk_size: int = 32, repeats: int = 5, threads: int | None = None) -> dict:
    """Median / min seconds of one forward pass on a (1, ..., S, S, S) chunk on the model's device."""
    from ssr_ros.completion.network import SSRUNet

    assert isinstance(model, SSRUNet)
    if threads:
        torch.set_num_threads(threads)
    device = next(model.parameters()).device
    config = model.config
    geometry = torch.zeros(1, 2, chunk_size, chunk_size, chunk_size, device=device)
    geometry[:, 0] = 1.0
    color = torch.zeros(1, config.color_channels, chunk_size, chunk_size, chunk_size, device=device) if config.use_color else None
    times = []
    with torch.no_grad():
        model(geometry, color, 0.15)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(geometry, color, 0.15)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return {"chunk_size": chunk_size, "median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "threads": torch.get_num_threads(), "device": str(device)}


def summarize(results: Sequence[dict]) -> dict:
    """Means over seeds of every score of fusion only and fusion + network."""
    summary = {}
    for key in ("fusion", "network"):
        rows = [r[key] for r in results if key in r]
        if not rows:
            continue
        summary[key] = {name: round(float(np.nanmean([row[name] for row in rows])), 4) for name in rows[0]}
    return summary
