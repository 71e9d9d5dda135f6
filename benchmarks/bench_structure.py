"""Structural labels (no model) against the exact ground truth of held-out generated rooms.

Each room (seeds >= 3000: never used for training) is rendered as a noisy handheld RGB-D
sequence and fused twice through ``MappingPipeline``: once with the frames' labels removed
(the structural labeller labels floor / wall / ceiling from planes), once with the generator's
noisy 2D pseudo-labels (a reference: what a decent 2D segmenter would give). Scores: per-class
IoU of wall and floor on observed ground-truth surface voxels (``ssr_ros.evaluation``).

    python benchmarks/bench_structure.py --seeds 3000 3001 3002 3003 3004
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene
from ssr_ros.evaluation import semantic_scores
from ssr_ros.pipeline import MappingPipeline, PipelineConfig


def fuse(frames, labels: bool, voxel_size: float):
    config = PipelineConfig(device="cpu")
    config.map.voxel_size = voxel_size
    config.completion.type = "none"
    pipeline = MappingPipeline(config, model=None)
    for frame in frames:
        if not labels:
            frame = dataclasses.replace(frame, labels=None, label_probs=None)
        pipeline.integrate(frame)
    return pipeline


def scores(pipeline, scene, voxel_size: float) -> dict:
    gt = scene.gt_volume(voxel_size)
    chunk = pipeline.map.extract_chunk(gt.origin_voxel, gt.shape)
    observed = chunk.observed.numpy() & gt.in_room
    surface = gt.occupied & (np.abs(gt.sdf) < voxel_size)
    probs = chunk.semantics.numpy()
    labels = np.where(probs.sum(-1) > 0, probs.argmax(-1), 0)
    result = semantic_scores(labels, np.where(surface, gt.class_ids, 0), scene.taxonomy.num_classes, observed)
    names = scene.taxonomy.names
    return {name: float(result.per_class_iou[names.index(name)]) for name in ("wall", "floor")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3000, 3001, 3002, 3003, 3004])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--voxel-size", type=float, default=0.05)
    args = parser.parse_args()
    if min(args.seeds) < 3000:
        parser.error("use held-out seeds (>= 3000)")
    rows = []
    for seed in args.seeds:
        scene = generate_scene(seed)
        config = SequenceConfig(width=args.width, height=args.height,
                                trajectory=TrajectoryConfig(num_frames=args.frames))
        frames = list(SyntheticSequence(scene, config))
        structural = fuse(frames, labels=False, voxel_size=args.voxel_size)
        reference = fuse(frames, labels=True, voxel_size=args.voxel_size)
        row = {"seed": seed, "structure": scores(structural, scene, args.voxel_size),
               "pseudo_labels": scores(reference, scene, args.voxel_size),
               "model": structural.structure.summary()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for source in ("structure", "pseudo_labels"):
        mean = {name: float(np.nanmean([r[source][name] for r in rows])) for name in ("wall", "floor")}
        print(f"mean {source}: wall IoU {mean['wall']:.3f}, floor IoU {mean['floor']:.3f} over seeds {args.seeds}")


if __name__ == "__main__":
    main()
