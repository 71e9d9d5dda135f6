"""How far unseen occupied space lies from what the cameras saw, on generated rooms.

Each room is captured and fused exactly as ``ssr evaluate-completion`` does (its evaluation
config); for the room's occupied voxels that no camera observed (the voxels the occupied IoU on
unobserved space is scored on), the share that lies within k voxels of an observed surface voxel
(fused, TSDF at or below half a voxel), and the share inside the extent of what the cameras saw
(the box of the observed surface, the space seen free and the camera positions: the box the room
layout is clipped to). Completion that extends what was seen by k voxels can fill at most that
share; the rest needs priors over whole rooms (the layout's planes) or objects no camera looked
at, and what lies outside the seen extent, a guess at how far the room goes on.

    PYTHONPATH=. python benchmarks/completion_reach.py --seeds 2300 2301 2302 2303 2304 [--out r.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DISTANCES = (2, 4, 6, 10)


def room_reach(seed: int, config) -> dict:
    """Counts of unobserved occupied room voxels, in all and within each of ``DISTANCES`` voxels."""
    import numpy as np
    import torch
    from scipy import ndimage

    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.completion.layout import LayoutConfig, find_layout, surface_samples
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    scene, sequence = synthetic_sequence(seed, config)
    pipeline = MappingPipeline(PipelineConfig(map=config.map, completion=CompletionConfig(type="none"),
                                              layout=LayoutConfig(type="none")))
    for frame in sequence:
        pipeline.integrate(frame)
    gt = scene.gt_volume(config.voxel_size)
    chunk = pipeline.map.extract_chunk(torch.as_tensor(gt.origin_voxel), gt.shape)
    observed = chunk.observed.numpy()
    surface = observed & (chunk.tsdf.numpy() <= config.voxel_size / 2)
    distance = ndimage.distance_transform_edt(~surface)
    unseen = gt.in_room & gt.occupied & ~observed
    layout = find_layout(surface_samples(chunk), config.voxel_size, LayoutConfig(), pipeline.camera_path)
    centers = (np.indices(gt.shape).transpose(1, 2, 3, 0) + gt.origin_voxel + 0.5) * config.voxel_size
    in_extent = np.all((centers >= layout.lo - config.voxel_size) & (centers <= layout.hi + config.voxel_size), axis=-1)
    return {"seed": seed, "unobserved_occupied": int(unseen.sum()),
            "within": {str(k): int((unseen & (distance <= k)).sum()) for k in DISTANCES},
            "in_seen_extent": int((unseen & in_extent).sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "training" / "evaluation.yaml",
                        help="evaluation config (capture and map of each room)")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="generated rooms")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    from ssr_ros.completion_evaluation import EvaluationConfig
    from ssr_ros.config import load_yaml_config

    torch.set_num_threads(1)
    config = load_yaml_config(EvaluationConfig, args.config)
    rooms = []
    for seed in args.seeds:
        room = room_reach(seed, config)
        rooms.append(room)
        shares = " ".join(f"<={k}: {room['within'][str(k)] / max(room['unobserved_occupied'], 1):.3f}" for k in DISTANCES)
        print(f"room {seed}: {room['unobserved_occupied']} unobserved occupied voxels; within k voxels of observed surface {shares}; "
              f"in the seen extent {room['in_seen_extent'] / max(room['unobserved_occupied'], 1):.3f}", flush=True)
    total = sum(r["unobserved_occupied"] for r in rooms)
    summary = {str(k): sum(r["within"][str(k)] for r in rooms) / max(total, 1) for k in DISTANCES}
    in_extent = sum(r["in_seen_extent"] for r in rooms) / max(total, 1)
    print("all rooms:", " ".join(f"<={k}: {v:.3f}" for k, v in summary.items()), f"in the seen extent: {in_extent:.3f}")
    if args.out:
        args.out.write_text(json.dumps({"voxel_size": config.voxel_size, "rooms": rooms, "share_within": summary,
                                        "share_in_seen_extent": in_extent}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
