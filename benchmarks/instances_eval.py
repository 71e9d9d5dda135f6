"""Object instances on held-out generated rooms: fused 2D instance ids against connected components.

    PYTHONPATH=. python benchmarks/instances_eval.py [--seeds 6000 ...] [--frames 80]
        [--json benchmarks/results/instances_eval.json]

The rooms, sequences and fused frames are those of ``benchmarks/objects_eval.py`` (320x240,
noisy depth, 2D-predictor labels, half the frames fused in contiguous segments, 5 cm voxels),
except that each fused frame also carries the renderer's per-pixel instance image (exact 2D
instances, an upper bound for a 2D instance segmenter, renumbered at random in every frame as
a segmenter's ids would be; the class labels stay noisy). Instances
are found on observed surface voxels (``include_predicted: false``, the default, so the
completion network does not change them) twice on the same map: ``source: components`` and
``source: auto`` (the fused 2D ids). Instance precision / recall as in objects_eval.py: greedy
one-to-one matches at voxel IoU >= 0.25, same class, against the true surface voxels of the
non-structural objects with >= 10 observed surface voxels; ``/seen`` rows score against the
part of each object's true surface that the map observed (segmentation without coverage).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.semantic_tsdf import SemanticTSDF
from ssr_ros.objects.evaluation import region_instance_matches
from ssr_ros.objects.instances import InstanceConfig, find_instances, map_region
from ssr_ros.objects.room_views import partial_sequence


def build_map(seed: int, frames: int, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{seed}_fusion_instances_renumbered.map"
    if not path.exists():
        scene, seq, kept = partial_sequence(seed, frames)
        tsdf_map = SemanticTSDF(TSDFConfig(), num_classes=scene.taxonomy.num_classes)
        for i in kept:
            view = seq.view(int(i))
            frame = view.frame
            # a 2D segmenter numbers each frame's instances its own way: renumber them at random
            ids = view.rendering.instance_ids
            renumber = np.random.default_rng([seed, int(i)]).permutation(int(ids.max()) + 1).astype(np.int32) + 1
            renumber[0] = 0
            frame.instance_ids = renumber[ids]
            tsdf_map.integrate(frame)
        tsdf_map.save(path)
    return path


def time_integration(seed: int, frames: int) -> dict:
    """Seconds per frame of fusing the room's first ``frames`` frames without and with their
    instance images (fresh maps, same frames, in alternation so that load on the machine hits both)."""
    scene = generate_scene(seed)
    seq = SyntheticSequence(scene, SequenceConfig(width=320, height=240, trajectory=TrajectoryConfig(num_frames=80)), seed=seed)
    views = [seq.view(i) for i in range(frames)]
    plain = SemanticTSDF(TSDFConfig(), num_classes=scene.taxonomy.num_classes)
    with_ids = SemanticTSDF(TSDFConfig(), num_classes=scene.taxonomy.num_classes)
    spent = {"without": 0.0, "with": 0.0}
    for view in views:
        frame = view.frame
        t0 = time.perf_counter()
        plain.integrate(frame)
        spent["without"] += time.perf_counter() - t0
        frame.instance_ids = view.rendering.instance_ids
        t0 = time.perf_counter()
        with_ids.integrate(frame)
        spent["with"] += time.perf_counter() - t0
    return {"frames": frames, "ms_per_frame_without": 1000 * spent["without"] / frames,
            "ms_per_frame_with": 1000 * spent["with"] / frames, "ratio": spent["with"] / spent["without"],
            "backend": plain.backend}


def scores(scene, region, instances, seen_only: bool = False) -> tuple[int, int, int]:
    """(matches, instances, objects); see ``region_instance_matches``."""
    matches, n_pred, n_gt = region_instance_matches(scene, region, instances, seen_only)
    return len(matches), n_pred, n_gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[6000, 6001, 6002, 6003, 6004, 6005, 6006, 6007])
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default="out/instances_eval")
    parser.add_argument("--time-frames", type=int, default=40, help="frames of the first room timed without / with instance images (0: skip)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    totals = {s: {"matched": 0, "predicted": 0, "gt": 0} for s in ("components", "auto", "components/seen", "auto/seen")}
    seconds = {"components": [], "auto": []}
    evidence = []
    for seed in args.seeds:
        scene = generate_scene(seed)
        tsdf_map = SemanticTSDF.load(build_map(seed, args.frames, Path(args.cache)))
        region = map_region(tsdf_map)
        row = {"seed": seed, "evidence_voxels": tsdf_map.instances.num_voxels,
               "evidence_bytes": tsdf_map.instances.memory_bytes(), "map_instances": tsdf_map.instances.next_id - 1}
        evidence.append(row)
        for source in ("components", "auto"):
            t0 = time.perf_counter()
            instances = find_instances(region, scene.taxonomy.names, InstanceConfig(source=source))
            seconds[source].append(time.perf_counter() - t0)
            for key, seen_only in ((source, False), (source + "/seen", True)):
                m, p, g = scores(scene, region, instances, seen_only)
                for k, v in zip(("matched", "predicted", "gt"), (m, p, g)):
                    totals[key][k] += v
                row[key] = {"matched": m, "predicted": p, "gt": g}
        print(json.dumps(row), flush=True)
    summary = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s)", "seeds": args.seeds}
    for source, t in totals.items():
        summary[source] = {**t, "precision": t["matched"] / max(t["predicted"], 1), "recall": t["matched"] / max(t["gt"], 1),
                           **({"find_seconds_per_room": float(np.mean(seconds[source]))} if seconds.get(source) else {})}
    summary["evidence_voxels_mean"] = float(np.mean([r["evidence_voxels"] for r in evidence]))
    summary["evidence_bytes_mean"] = float(np.mean([r["evidence_bytes"] for r in evidence]))
    if args.time_frames:
        summary["integration"] = time_integration(args.seeds[0], args.time_frames)
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"summary": summary, "rooms": evidence}, indent=1))


if __name__ == "__main__":
    main()
