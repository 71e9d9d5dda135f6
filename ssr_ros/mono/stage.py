"""The monocular input stage: a color frame in, a frame with predicted depth out.

In ``input_mode: rgb`` the mapping pipeline passes every frame through :class:`MonoDepthStage`
before fusion. Only key frames (:mod:`ssr_ros.mono.keyframes`) are predicted and fused; the
others return None. A key frame's depth becomes the prediction (low-confidence pixels dropped),
its ``depth_weight`` the per-pixel confidence weight, and, when it brings no 2D semantics of its
own, its ``label_probs`` the predicted class probabilities. A depth image that came with the
frame (a recording's) is never fused: it only scores the prediction (:attr:`depth_scores`).
With ``stereo`` on, each key frame's depth is refined against the last ``stereo_sources`` key
frames by a plane sweep (:mod:`ssr_ros.mono.stereo`) before its confidence weights are
computed; where enough pixels matched, the ones that did not are rescaled by the matches' median
ratio to the network's depth (``stereo_scale_min_fraction``: the network's scale drifts from frame
to frame). With
``consistency_views`` > 0 a key frame's pixels then keep their full weight only where at least
``consistency_min_views`` of the last ``consistency_views`` key frames predicted the same surface
(:mod:`ssr_ros.mono.consistency`); the others fuse with ``consistency_failed_weight`` times
their weight (0: not at all). The check runs at the sweep's image size. A key frame left with no
pixel to fuse (one unsure everywhere, or the first ones when failing pixels are dropped) returns
None as well and is counted as ``empty_key_frames``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ssr_ros.errors import InvalidFrame
from ssr_ros.geometry.frame import Frame
from ssr_ros.geometry.pose import validate_pose
from ssr_ros.mono.consistency import DepthView, agreeing_views
from ssr_ros.mono.keyframes import KeyFrameConfig, KeyFrameSelector
from ssr_ros.mono.losses import depth_metrics
from ssr_ros.mono.predictor import MonoConfig, MonoPrediction, MonoPredictor, confidence_weights
from ssr_ros.mono.stereo import StereoView, gray_image, match_scale, plane_sweep, sweep_size


def color_frame(rgb: np.ndarray, intrinsics, T_world_cam: np.ndarray, **fields: Any) -> Frame:
    """A Frame of a color image alone (depth all 0, to be predicted); not validated."""
    return Frame(depth=np.zeros(intrinsics.shape, np.float32), intrinsics=intrinsics, T_world_cam=T_world_cam,
                 rgb=rgb, **fields)


class MonoDepthStage:
    """``stage(frame) -> Frame | None`` (see the module docstring); thread-safe."""

    def __init__(self, config: MonoConfig, num_classes: int) -> None:
        self.config = config.validate()
        self.predictor = MonoPredictor(config, num_classes)
        self.key_frames = KeyFrameSelector(KeyFrameConfig(config.key_frame_rotation_deg, config.key_frame_translation_m))
        self._lock = threading.Lock()
        self.predict_s = 0.0
        self.fused_fraction_sum = 0.0
        self._score_sums: dict[str, float] = {}
        self._scored_frames = 0
        self._previous: list[StereoView] = []
        self.stereo_frames = 0
        self.stereo_pixel_fraction_sum = 0.0
        self.stereo_scaled_frames = 0
        self.stereo_scale_change_sum = 0.0
        self._depth_views: list[DepthView] = []
        self.consistency_frames = 0
        self.empty_key_frames = 0
        self.consistent_fraction_sum = 0.0

    def __call__(self, frame: Frame) -> Frame | None:
        if frame.rgb is None:
            raise InvalidFrame("monocular mode (input_mode 'rgb') needs a color image; the frame has none")
        T = validate_pose(frame.T_world_cam, "T_world_cam")
        with self._lock:
            if not self.key_frames.is_key(T):
                return None
        start = time.perf_counter()
        has_semantics = frame.labels is not None or frame.label_probs is not None
        prediction = self.predictor(frame.rgb, frame.intrinsics, semantics=self.config.semantics and not has_semantics)
        if self.config.stereo:
            prediction = self._refine(prediction, frame, T)
        if self.config.consistency_views:
            prediction = self._check_consistency(prediction, frame, T)
        seconds = time.perf_counter() - start
        recorded = np.asarray(frame.depth, dtype=np.float32)
        scores = None
        if recorded.shape == prediction.depth.shape and np.any(np.isfinite(recorded) & (recorded > 0)):
            raw = prediction.depth_unfiltered
            scores = depth_metrics(torch.from_numpy(raw), torch.from_numpy(recorded))
        with self._lock:
            self.predict_s += seconds
            self.fused_fraction_sum += float(np.mean(prediction.weight > 0))
            if scores is not None and scores["pixels"]:
                self._scored_frames += 1
                for k in ("abs_rel", "rmse", "delta1"):
                    self._score_sums[k] = self._score_sums.get(k, 0.0) + scores[k]
        if not np.any(prediction.weight > 0):  # nothing to fuse (all unsure, or no view agrees yet)
            with self._lock:
                self.empty_key_frames += 1
            return None
        updates: dict[str, Any] = {"depth": prediction.depth, "depth_weight": prediction.weight}
        if prediction.labels is not None:
            updates.update(labels=prediction.labels, label_confidence=prediction.label_confidence, label_probs=None)
        return dataclasses.replace(frame, **updates).validate()

    def _refine(self, prediction: MonoPrediction, frame: Frame, T: np.ndarray) -> MonoPrediction:
        """The prediction after a plane sweep against the last key frames (those far enough away)."""
        cfg = self.config
        K, factor = sweep_size(frame.intrinsics, cfg.stereo_max_width)
        view = StereoView(gray_image(frame.rgb, K.height, K.width), K, T)
        with self._lock:
            previous = [p for p in self._previous if p.intrinsics == K
                        and np.linalg.norm(p.T_world_cam[:3, 3] - T[:3, 3]) >= max(cfg.stereo_min_baseline_m, 1e-6)]
            self._previous = (self._previous + [view])[-cfg.stereo_sources:]
        if not previous:
            return prediction
        H, W = frame.intrinsics.shape
        maps = torch.stack([torch.from_numpy(prediction.depth_unfiltered), torch.from_numpy(prediction.sigma)])[None]
        if factor > 1:  # to the sweep's size and back by nearest pixel
            maps = F.interpolate(maps, size=K.shape, mode="nearest")
        depth, sigma = maps[0, 0], maps[0, 1]
        refined, new_sigma = plane_sweep(view, previous, depth, sigma, planes=cfg.stereo_planes, min_zncc=cfg.stereo_min_zncc)
        changed = float((new_sigma < sigma).float().mean())
        matched = refined != depth
        scale = match_scale(depth, refined, matched, cfg.stereo_scale_min_fraction)
        if scale is not None:
            refined = torch.where(matched, refined, depth * scale)
        if factor > 1:
            back = F.interpolate(torch.stack([refined, new_sigma])[None], size=(H, W), mode="nearest")[0]
            refined, new_sigma = back[0], back[1]
        kept, weight = confidence_weights(refined, new_sigma, cfg)
        with self._lock:
            self.stereo_frames += 1
            self.stereo_pixel_fraction_sum += changed
            if scale is not None:
                self.stereo_scaled_frames += 1
                self.stereo_scale_change_sum += abs(math.log(scale))
        return MonoPrediction(kept.numpy().astype(np.float32), weight.numpy().astype(np.float32),
                              new_sigma.numpy().astype(np.float32), prediction.labels, prediction.label_confidence,
                              refined.numpy().astype(np.float32))

    def _check_consistency(self, prediction: MonoPrediction, frame: Frame, T: np.ndarray) -> MonoPrediction:
        """The prediction with the pixels that too few earlier key frames agree with weighted down (or dropped)."""
        cfg = self.config
        K, factor = sweep_size(frame.intrinsics, cfg.stereo_max_width)
        raw = torch.from_numpy(prediction.depth_unfiltered)
        if factor > 1:
            raw = F.interpolate(raw[None, None], size=K.shape, mode="nearest")[0, 0]
        view = DepthView(raw, K, T)
        with self._lock:
            others = [v for v in self._depth_views if v.intrinsics == K]
            self._depth_views = (self._depth_views + [view])[-cfg.consistency_views:]
        agree, _ = agreeing_views(view, others, cfg.consistency_tolerance)
        keep = agree >= cfg.consistency_min_views
        if factor > 1:
            keep = F.interpolate(keep[None, None].float(), size=frame.intrinsics.shape, mode="nearest")[0, 0] > 0.5
        keep = keep.numpy()
        with self._lock:
            self.consistency_frames += 1
            self.consistent_fraction_sum += float(np.mean(keep & (prediction.weight > 0)))
        failed_weight = cfg.consistency_failed_weight
        if failed_weight > 0:
            return dataclasses.replace(prediction, weight=np.where(keep, prediction.weight,
                                                                   failed_weight * prediction.weight).astype(np.float32))
        return dataclasses.replace(prediction, depth=np.where(keep, prediction.depth, 0.0).astype(np.float32),
                                   weight=np.where(keep, prediction.weight, 0.0).astype(np.float32))

    def reset(self) -> None:
        """Forget the last key frame (after the map is cleared or the clock jumped)."""
        with self._lock:
            self.key_frames.reset()
            self._previous = []
            self._depth_views = []

    @property
    def depth_scores(self) -> dict[str, float] | None:
        """Mean per-frame AbsRel, RMSE (m), delta<1.25 of the predictions against the frames' own depth."""
        with self._lock:
            if not self._scored_frames:
                return None
            return {k: v / self._scored_frames for k, v in self._score_sums.items()} | {"frames": self._scored_frames}

    def summary(self) -> dict[str, Any]:
        selector = self.key_frames
        key = max(selector.key_frames, 1)
        return {"weights": str(self.predictor.weights_path), "frames_seen": selector.frames_seen,
                "key_frames": selector.key_frames, "not_key_frames": selector.frames_seen - selector.key_frames,
                "predict_ms_mean": 1000.0 * self.predict_s / key,
                "fused_pixel_fraction": self.fused_fraction_sum / key,
                "stereo_frames": self.stereo_frames,
                "stereo_pixel_fraction": self.stereo_pixel_fraction_sum / max(self.stereo_frames, 1),
                "stereo_scaled_frames": self.stereo_scaled_frames,
                "stereo_scale_change_mean": math.exp(self.stereo_scale_change_sum / max(self.stereo_scaled_frames, 1)) - 1.0,
                "empty_key_frames": self.empty_key_frames,
                "consistency_frames": self.consistency_frames,
                "consistent_pixel_fraction": self.consistent_fraction_sum / max(self.consistency_frames, 1),
                "depth_vs_recorded": self.depth_scores}
