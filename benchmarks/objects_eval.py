"""Object refinement on held-out generated rooms: per-object quality before and after.

    PYTHONPATH=. python benchmarks/objects_eval.py [--seeds 6000 6001 ...] [--frames 80]
        [--weights models/shape_prior_small.pt,models/shape_prior_rooms2.pt,models/shape_prior_rooms.pt] [--threads 1] [--json benchmarks/results/objects_eval.json]

For each room seed (never used to train the completion network; the shape prior never saw a
room of these seeds): render a handheld RGB-D sequence (320x240, noisy depth, 2D-predictor labels),
fuse half of it (contiguous segments dropped, so objects are seen from some sides only) into a
5 cm map ("fusion"), complete it with the shipped completion network ("fusion + completion"),
then run ``refine_objects`` on that map with the fused frames' camera path ("+ objects";
``--no-camera-path``: without it, as ``ssr refine-objects`` on a saved map; ``--instance-ids``: the
frames also carry the renderer's instance images, so instances come from fused 2D ids), writing the completed
shapes with their own surfaces (``objects.surface: true``: the scores below are of the objects'
meshes; ``--inside-only`` writes only their inside, the map's default). Each map is meshed and scored per object
against the object's exact surface (contact faces left out): Chamfer distance, F-score at 2 cm
and 5 cm, over the objects of the prior's classes that the map saw (>= 10 observed surface
voxels). Alignment error (yaw, front-aware and modulo 180 degrees; centre distance in the
floor plane) over refined instances matched to an object, and instance precision / recall
(voxel IoU >= 0.25, same class) over all non-structural classes. Maps are cached in
``--cache`` so a rerun only redoes the stages after the one changed.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ssr_ros.completion.inference import CompletionConfig, complete_region
from ssr_ros.completion.scenes import fuse
from ssr_ros.data.synthetic import generate_scene
from ssr_ros.map.config import TSDFConfig
from ssr_ros.map.semantic_tsdf import SemanticTSDF
from ssr_ros.objects.evaluation import object_scores, object_yaw, own_instance_ids, region_instance_matches, yaw_error
from ssr_ros.objects.refinement import ObjectRefinementConfig, configured_prior, prior_paths, refine_objects
from ssr_ros.objects.room_views import partial_sequence
from ssr_ros.pipeline import load_completion_model

SYMMETRIC = {"table": 2, "bed": 1, "otherfurniture": 1}


def build_maps(seed: int, frames: int, cache: Path, instance_ids: bool = False) -> dict[str, Path]:
    """The fused and the completed map of room ``seed``; ``instance_ids``: the frames also carry the
    renderer's instance images (renumbered in every frame, as a 2D instance segmenter's would be)."""
    cache.mkdir(parents=True, exist_ok=True)
    if instance_ids:
        from instances_eval import build_map  # the same frames, with their instance images

        paths = {"fusion": build_map(seed, frames, cache), "completion": cache / f"{seed}_completion_instance_ids.map"}
    else:
        paths = {"fusion": cache / f"{seed}_fusion.map", "completion": cache / f"{seed}_completion.map"}
    if not paths["fusion"].exists():
        _, seq, kept = partial_sequence(seed, frames)
        fuse([seq[i] for i in kept], TSDFConfig()).save(paths["fusion"])
    if not paths["completion"].exists():
        tsdf_map = SemanticTSDF.load(paths["fusion"])
        scene = generate_scene(seed)
        lo, hi = scene.bounds()
        vs = tsdf_map.voxel_size
        model = load_completion_model(CompletionConfig(device="cpu"))
        complete_region(model, tsdf_map, np.floor(lo / vs).astype(int).tolist(), np.ceil(hi / vs).astype(int).tolist(), CompletionConfig(device="cpu"))
        tsdf_map.save(paths["completion"])
    return paths


def camera_path(seed: int, frames: int) -> np.ndarray:
    """(K, 3) camera positions of the fused frames of room ``seed`` (as in :func:`build_maps`)."""
    _, seq, kept = partial_sequence(seed, frames)
    return np.array([np.asarray(seq.trajectory.poses[i])[:3, 3] for i in kept], dtype=np.float64)


def seen_objects(scene, tsdf_map, prior_classes) -> list:
    """Objects of the prior's classes with >= 10 observed surface voxels in the map."""
    mesh = tsdf_map.mesh(include_predicted=False)
    d, cls, inst = scene.sdf(mesh.vertices) if len(mesh.vertices) else (np.zeros(0), np.zeros(0, int), np.zeros(0, int))
    inst = own_instance_ids(scene, cls, inst)  # a bathtub's shower curtain is not the bathtub
    counts = np.bincount(inst[np.abs(d) < 0.05], minlength=len(scene.objects) + 1) if len(d) else np.zeros(len(scene.objects) + 1)
    names = scene.taxonomy.names
    return [o for o in scene.objects if names[o.class_id] in prior_classes and counts[o.instance_id] >= 10 * 4]


# (command-line flag, ObjectRefinementConfig field it overrides, type)
OVERRIDES = [
    ("min-fit", "min_fit", float), ("max-distance", "max_distance", float), ("turns", "alignment.turns", int),
    ("search", "alignment.search", str), ("prior-weight", "alignment.prior_weight", float),
    ("size-weight", "alignment.size_weight", float), ("max-log-scale", "alignment.max_log_scale", float),
    ("reach", "max_distance_fraction", float), ("view-weight", "alignment.view_weight", float),
    ("wall-weight", "alignment.wall_weight", float), ("max-yaw-change", "alignment.max_yaw_change", float),
    ("wall-snap-angle", "alignment.wall_snap_angle", float), ("max-support-gap", "max_support_gap", float),
    ("max-fill", "max_fill", float), ("join-gap", "join_gap", float),
    ("max-free-points", "alignment.max_free_points", int), ("sample-seed", "alignment.sample_seed", int),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[6000, 6001, 6002, 6003, 6004, 6005])
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--weights", default="",
                        help="shape prior weights, several separated by commas (default: the packaged three)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default="out/objects_eval")
    for flag, field, kind in OVERRIDES:
        extra = {"choices": ["turns", "grid", "head"]} if flag == "search" else {}
        parser.add_argument(f"--{flag}", type=kind, default=None, help=f"override objects {field}", **extra)
    parser.add_argument("--no-camera-path", action="store_true", help="leave the camera path out (the seen-free "
                        "space stands in for it, as in ssr refine-objects on a saved map)")
    parser.add_argument("--fixed-yaw", action="store_true", help="objects alignment.refine_yaw false")
    parser.add_argument("--inside-only", action="store_true",
                        help="objects surface false (the map's default): only the completed shapes' inside is written")
    parser.add_argument("--instance-ids", action="store_true",
                        help="fuse the frames' exact 2D instance ids (renumbered per frame; an upper bound for a 2D "
                        "instance segmenter): instances come from them instead of connected components")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = ObjectRefinementConfig(surface=not args.inside_only, weights=args.weights)
    for flag, field, _ in OVERRIDES:
        value = getattr(args, flag.replace("-", "_"))
        if value is not None:
            owner, _, name = field.rpartition(".")
            setattr(config.alignment if owner else config, name, value)
    if args.fixed_yaw:
        config.alignment.refine_yaw = False
    config.validate()
    prior = configured_prior(config)
    rows, align_rows, inst_totals = [], [], {"matched": 0, "predicted": 0, "gt": 0}
    seconds = []
    for seed in args.seeds:
        scene = generate_scene(seed)
        names = scene.taxonomy.names
        paths = build_maps(seed, args.frames, Path(args.cache), args.instance_ids)
        maps = {"fusion": SemanticTSDF.load(paths["fusion"]), "fusion + completion": SemanticTSDF.load(paths["completion"])}
        refined_map = SemanticTSDF.load(paths["completion"])
        t0 = time.perf_counter()
        cameras = None if args.no_camera_path else camera_path(seed, args.frames)
        result = refine_objects(refined_map, names, prior, config, camera_path=cameras)
        seconds.append(time.perf_counter() - t0)
        maps["+ objects"] = refined_map
        objects = seen_objects(scene, maps["fusion"], prior.class_names)
        scores = {name: object_scores(scene, objects, m.mesh(include_predicted=True).vertices) for name, m in maps.items()}
        for obj in objects:
            if all(obj.instance_id in s for s in scores.values()):
                rows.append({"seed": seed, "instance": obj.instance_id, "class": names[obj.class_id],
                             **{f"{name}/{k}": v for name, s in scores.items() for k, v in s[obj.instance_id].items()}})
        # instances against the exact volume on the region grid
        matches, n_pred, n_gt = region_instance_matches(scene, result.region, result.instances)
        inst_totals["matched"] += len(matches)
        inst_totals["predicted"] += n_pred
        inst_totals["gt"] += n_gt
        by_id = {o.instance_id: o for o in scene.objects}
        for p, g, iou in matches:
            record = result.objects[p]
            if not record.refined:
                continue
            obj = by_id[g]
            R = scene.boxes.rotations[obj.box_indices[0]]
            corners = np.concatenate([scene.boxes.corners()[b] for b in obj.box_indices])
            local = corners @ R
            centre = R @ ((local.min(axis=0) + local.max(axis=0)) / 2)
            true_yaw = object_yaw(scene, obj)
            align_rows.append({"seed": seed, "class": names[obj.class_id], "iou": iou,
                               "yaw_error_deg": yaw_error(record.yaw, true_yaw),
                               "yaw_error_mod180_deg": yaw_error(record.yaw, true_yaw, 2),
                               "centre_error_m": float(np.linalg.norm(np.asarray(record.center[:2]) - centre[:2])),
                               "true_yaw": true_yaw, "yaw": record.yaw,
                               "candidates": result.shapes[record.instance_id].candidates})
        print(json.dumps({"seed": seed, "room": scene.room_type, "objects": len(objects), "instances": n_pred,
                          "matched": len(matches), "refined": sum(r.refined for r in result.objects),
                          "written_voxels": result.written_voxels, "refine_s": round(seconds[-1], 1)}), flush=True)

    def mean(key):
        values = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        return float(np.mean(values)) if values else None

    summary = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s)", "seeds": args.seeds,
               "objects": len(rows), "weights": ",".join(str(p) for p in prior_paths(config)),
               "min_fit": config.min_fit, "max_distance": config.max_distance, "turns": config.alignment.turns,
               "search": config.alignment.search, "prior_weight": config.alignment.prior_weight,
               "view_weight": config.alignment.view_weight, "wall_weight": config.alignment.wall_weight,
               "camera_path": not args.no_camera_path, "size_weight": config.alignment.size_weight,
               "max_log_scale": config.alignment.max_log_scale, "max_distance_fraction": config.max_distance_fraction,
               "max_yaw_change": config.alignment.max_yaw_change, "wall_snap_angle": config.alignment.wall_snap_angle,
               "max_support_gap": config.max_support_gap, "max_fill": config.max_fill,
               "instances_from": "2D instance ids" if args.instance_ids else "connected components"}
    for name in ("fusion", "fusion + completion", "+ objects"):
        summary[name] = {k: mean(f"{name}/{k}") for k in ("chamfer", "accuracy", "completeness", "fscore@2cm", "fscore@5cm")}
    # objects the map has no points of have infinite completeness: count them apart
    summary["objects_without_points"] = {name: sum(1 for r in rows if r[f"{name}/points"] == 0) for name in ("fusion", "fusion + completion", "+ objects")}
    both = [r for r in rows if r["fusion + completion/points"] and r["+ objects/points"]]
    if both:
        before = np.array([r["fusion + completion/chamfer"] for r in both])
        after = np.array([r["+ objects/chamfer"] for r in both])
        summary["chamfer_change_vs_completion"] = float(after.mean() / before.mean() - 1)
        summary["median_chamfer_change_vs_completion"] = float(np.median(after / before - 1))
        summary["objects_better"] = int((after < before).sum())
        summary["objects_compared"] = len(both)
    if align_rows:
        summary["alignment"] = {
            "refined_matched": len(align_rows),
            "median_yaw_error_deg": float(np.median([r["yaw_error_deg"] for r in align_rows])),
            "median_yaw_error_mod180_deg": float(np.median([r["yaw_error_mod180_deg"] for r in align_rows])),
            "median_centre_error_m": float(np.median([r["centre_error_m"] for r in align_rows])),
        }
    summary["instances"] = {**inst_totals, "precision": inst_totals["matched"] / max(inst_totals["predicted"], 1),
                            "recall": inst_totals["matched"] / max(inst_totals["gt"], 1)}
    summary["refine_seconds_per_room"] = float(np.mean(seconds))
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"summary": summary, "objects": rows, "alignment": align_rows}, indent=1))


if __name__ == "__main__":
    main()
