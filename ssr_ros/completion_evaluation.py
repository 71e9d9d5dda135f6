"""Held-out evaluation of completion against the baselines a user could pick, on generated rooms.

For every seed (rooms never used in training): generate the room and its RGB-D sequence, run
it through :class:`ssr_ros.pipeline.MappingPipeline` exactly as a user's map is built
(``integrate`` every frame, then ``complete(everything=True)``), and score three maps against
the generator's exact ground truth:

- ``fusion``: the same map without its predicted voxels (``map.mesh(include_predicted=False)``,
  observed voxels only);
- ``poisson``: the screened Poisson reconstruction of the fusion-only mesh
  (:mod:`ssr_ros.evaluation.poisson`); its occupancy on unobserved voxels is the voxelised
  Poisson surface (:func:`~ssr_ros.evaluation.poisson.mesh_occupancy`), its labels there the
  nearest fused vertex's;
- ``network``: the map completed by the network (observed + predicted voxels, ``map.mesh()``);
- ``layout``: the fused map with the room layout's unseen floor, walls and ceiling
  (:mod:`ssr_ros.completion.layout`);
- ``layout+objects``: the layout, then object refinement (:mod:`ssr_ros.objects.refinement`): the
  map's instances completed from the learned shape prior and written as predicted voxels (what
  ``ssr reconstruct`` does when the network is off or withheld);
- ``network+layout``: the network, then the layout;
- ``network+layout+objects``: then object refinement.

Scores (see :mod:`ssr_ros.evaluation.comparison`): mesh accuracy, completeness, precision,
recall and F-score at 5 cm against points sampled on the GT mesh; occupied-voxel IoU on the
room's unobserved voxels (``tsdf <= voxel / 2``, the ground truth's ``sdf < voxel / 2`` up to
the boundary); semantic mIoU on GT surfaces, observed / unobserved / all; and, of the vertices a
method made up (network: written by completion; Poisson: farther than one voxel from the fused
mesh), the fraction within 5 cm of the GT surface and the fraction outside the room's box.

:func:`evaluate_real_frames` is the same question on a real recording without ground truth: a
sparse stretch of it, fusion only vs completed, against the fusion of many more frames.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ssr_ros.completion.layout import LayoutConfig
from ssr_ros.config import config_to_dict, param, validate_config
from ssr_ros.map.config import TSDFConfig

METHODS = ("fusion", "poisson", "network", "layout", "layout+objects", "network+layout", "network+layout+objects")
"""Rows of the comparison, in table order."""

METHOD_TITLES = {"fusion": "fusion only", "poisson": "Poisson (of the fused mesh)", "network": "fusion + network",
                 "layout": "fusion + room layout", "layout+objects": "fusion + room layout + objects",
                 "network+layout": "fusion + network + room layout",
                 "network+layout+objects": "fusion + network + room layout + objects"}


@dataclass
class EvaluationConfig:
    """Which held-out scenes and how they are captured (match the training data config)."""

    seeds: list = param([1000, 1001, 1002], "held-out scene seeds (never used in training)")
    frames_per_scene: int = param(40, "frames per sequence, all fused", low=1, high=100000)
    frame_rate: float = param(1.5, "frames per second along the path", low=0.01, high=1000.0)
    trajectory: str = param("handheld", "camera path style: 'handheld' (a person walking, camera 1.3-1.7 m high) or 'robot' "
                            "(a ground robot's camera, 0.4-0.9 m high, looking ahead)", choices=["handheld", "robot"])
    image_width: int = param(160, "image width, pixels", low=8, high=4096)
    image_height: int = param(120, "image height, pixels", low=8, high=4096)
    map: TSDFConfig = field(default_factory=TSDFConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    chunk_size: int = param(32, "inference chunk side, voxels", low=16, high=256)
    overlap: int = param(8, "inference chunk overlap, voxels", low=0, high=128)
    batch_size: int = param(2, "chunks per network batch", low=1, high=256)
    threshold: float = param(0.05, "mesh precision / recall distance, metres", low=0.001, high=1.0)
    gt_points: int = param(200_000, "points sampled on each mesh for the mesh scores", low=1000, high=10_000_000)

    def validate(self) -> "EvaluationConfig":
        return validate_config(self)

    @property
    def voxel_size(self) -> float:
        return self.map.voxel_size


def _say(message: str, stage: str = "evaluate-completion") -> None:
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


def _voxel_scores(occupied: np.ndarray, labels: np.ndarray, gt, observed: np.ndarray, num_classes: int,
                  class_names: Sequence[str] = ()) -> dict:
    """Occupied-voxel IoU / precision / recall and semantic mIoU per region (observed, unobserved, all);
    with ``class_names``, also each class's IoU on unobserved surface voxels (``unobserved_iou_<name>``,
    classes the room has there)."""
    from ssr_ros.evaluation.completion import completion_report
    from ssr_ros.evaluation.semantics import semantic_report

    valid = gt.in_room
    completion = completion_report(occupied, gt.occupied, observed, valid)
    semantics = semantic_report(labels, gt.class_ids, num_classes, observed, valid & gt.occupied)
    out = {}
    for region in ("unobserved", "observed", "all"):
        out[f"{region}_iou"] = completion[region].iou
        out[f"{region}_precision"] = completion[region].precision
        out[f"{region}_recall"] = completion[region].recall
        out[f"{region}_miou"] = semantics[region].miou
        out[f"{region}_macc"] = semantics[region].macc
    for name, iou in zip(class_names, semantics["unobserved"].per_class_iou):
        if np.isfinite(iou):
            out[f"unobserved_iou_{name}"] = float(iou)
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def evaluate_seed(seed: int, config: EvaluationConfig, completion=None, poisson=None, progress: bool = True,
                  layout=None, objects=None) -> dict:
    """Scores of fusion only, Poisson, the network, the room layout, both, and the objects after them on the
    generated room ``seed``.

    completion: a ``CompletionConfig`` (weights, chunking) for the network rows, or None to
    leave them out; poisson: a ``PoissonConfig`` for the Poisson row, or None to leave it out;
    layout: a ``LayoutConfig`` for the layout rows, or None to leave them out; objects: a
    ``ShapePrior`` for the object-refinement row (after the network and the layout, with the
    pipeline's default ``ObjectRefinementConfig``), or None to leave it out.
    Returns ``{"seed", "voxels_in_room", "unobserved_fraction", "chunks_completed",
    "observed_unchanged", "seconds": {...}, "methods": {method: scores}}``.
    """
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.completion.layout import complete_layout
    from ssr_ros.completion.scenes import synthetic_sequence
    from ssr_ros.evaluation.comparison import new_surface, surface_scores
    from ssr_ros.evaluation.mesh import sample_surface
    from ssr_ros.evaluation.poisson import mesh_occupancy, poisson_surface
    from ssr_ros.map.voxel_export import dense_volume
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    scene, sequence = synthetic_sequence(seed, config)
    pipeline = MappingPipeline(PipelineConfig(map=config.map, completion=completion or CompletionConfig(type="none"),
                                              layout=LayoutConfig(type="none")))
    for frame in sequence:
        pipeline.integrate(frame)
    seconds["render_and_integrate"] = time.perf_counter() - start
    gt = scene.gt_volume(config.voxel_size)
    with pipeline.lock:
        fused_chunk = pipeline.map.extract_chunk(torch.as_tensor(gt.origin_voxel), gt.shape)
        dense = dense_volume(pipeline.map, gt.origin_voxel, gt.shape)
        fused_mesh = pipeline.map.mesh(include_predicted=False)
    completed: dict[str, tuple] = {}  # method -> (mesh, dense volume after it)

    def snapshot(name: str) -> None:
        with pipeline.lock:
            completed[name] = (pipeline.map.mesh(), dense_volume(pipeline.map, gt.origin_voxel, gt.shape))

    def add_layout(name: str) -> None:
        start = time.perf_counter()
        report = complete_layout(pipeline.map, layout, pipeline.camera_path, pipeline.structural_class_ids(),
                                 floor_height=pipeline.config.planning.floor_height)
        seconds[f"layout_{name}"] = time.perf_counter() - start
        result.setdefault("layout", report.as_dict())
        snapshot(name)

    def add_objects(name: str) -> None:
        start = time.perf_counter()
        refined = pipeline.refine_objects(objects)
        seconds[f"objects_{name}"] = time.perf_counter() - start
        result.setdefault("objects", {})[name] = refined.counts()
        snapshot(name)

    result: dict = {}
    chunks = 0
    with_objects = objects is not None and layout is not None and layout.enabled
    if layout is not None and layout.enabled and pipeline.model is not None:
        # the layout alone needs the map without the network's predictions: a copy
        network_map, pipeline.map = pipeline.map, pipeline.map.copy()
        add_layout("layout")
        if with_objects:
            add_objects("layout+objects")
        pipeline.map = network_map
    if pipeline.model is not None:
        if progress:
            _say(f"seed {seed}: completing the map")
        start = time.perf_counter()
        chunks = pipeline.complete(everything=True)
        seconds["complete"] = time.perf_counter() - start
        snapshot("network")
    if layout is not None and layout.enabled:
        add_layout("network+layout" if pipeline.model is not None else "layout")
    if with_objects:
        add_objects("network+layout+objects" if pipeline.model is not None else "layout+objects")

    with pipeline.lock:
        after = pipeline.map.extract_chunk(torch.as_tensor(gt.origin_voxel), gt.shape)
    observed = dense["observed"]
    valid = gt.in_room
    num_classes = pipeline.map.num_classes
    surface_occupied = dense["tsdf"] <= config.voxel_size / 2
    fusion_occupied = observed & surface_occupied
    fusion_labels = np.where(observed, dense["class_ids"], 0)
    gt_points = sample_surface(*_gt_mesh_arrays(scene), config.gt_points, seed=1)
    room_box = scene.interior_bounds()
    result.update({
        "seed": int(seed), "frames": pipeline.frames_integrated, "voxels_in_room": int(valid.sum()),
        "unobserved_fraction": round(float((valid & ~observed).sum() / max(valid.sum(), 1)), 4),
        "chunks_completed": chunks, "completion_withheld": pipeline.completion_withheld,
        # observed voxels must keep their fused values
        "observed_unchanged": bool(torch.equal(after.tsdf[fused_chunk.observed], fused_chunk.tsdf[fused_chunk.observed])
                                   and not bool(after.predicted[fused_chunk.observed].any())),
        "seconds": seconds, "methods": {},
    })

    def score(name: str, vertices, triangles, new_vertices, occupied, labels) -> None:
        start = time.perf_counter()
        scores = surface_scores(vertices, triangles, new_vertices, gt_points, room_box, room_margin=config.voxel_size,
                                threshold=config.threshold, num_points=config.gt_points)
        scores.update(_voxel_scores(occupied, labels, gt, observed, num_classes, pipeline.taxonomy.names))
        result["methods"][name] = scores
        seconds[f"score_{name}"] = time.perf_counter() - start

    score("fusion", fused_mesh.vertices, fused_mesh.triangles, None, fusion_occupied, fusion_labels)
    if poisson is not None:
        start = time.perf_counter()
        vertices, triangles = poisson_surface(fused_mesh.vertices, fused_mesh.triangles, poisson)
        occupied = mesh_occupancy(vertices, triangles, gt.origin_voxel, gt.shape, config.voxel_size)
        seconds["poisson"] = time.perf_counter() - start
        added = ~observed & occupied
        labels = fusion_labels.copy()
        if added.any() and fused_mesh.num_vertices:
            from scipy.spatial import cKDTree

            centers = (np.argwhere(added) + gt.origin_voxel + 0.5) * config.voxel_size
            _, nearest = cKDTree(fused_mesh.vertices).query(centers, workers=-1)
            labels[added] = fused_mesh.labels[nearest]
        score("poisson", vertices, triangles, new_surface(vertices, fused_mesh.vertices, config.voxel_size),
              fusion_occupied | added, labels)
    for name in METHODS:
        if name in completed:
            mesh, volume = completed[name]
            predicted = volume["predicted"] & ~observed
            occupied = fusion_occupied | (predicted & (volume["tsdf"] <= config.voxel_size / 2))
            labels = np.where(observed | predicted, volume["class_ids"], 0)
            score(name, mesh.vertices, mesh.triangles, mesh.predicted, occupied, labels)
    result["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return result


def _gt_mesh_arrays(scene) -> tuple[np.ndarray, np.ndarray]:
    mesh = scene.gt_mesh()
    return mesh.vertices, mesh.faces


def summarize(results: Sequence[dict]) -> dict:
    """Per method, the mean over seeds of every score (scores that do not apply are left out)."""
    from ssr_ros.evaluation.comparison import mean_scores

    summary = {}
    for method in METHODS:
        rows = [r["methods"][method] for r in results if method in r["methods"]]
        if rows:
            summary[method] = mean_scores(rows)
    return summary


def comparison_tables(results: Sequence[dict]) -> str:
    """Markdown: the mean over seeds per method, then every seed's rows."""
    from ssr_ros.evaluation.comparison import markdown_table

    summary = summarize(results)
    seeds = ", ".join(str(r["seed"]) for r in results)
    mean = markdown_table([(METHOD_TITLES[m], summary[m]) for m in METHODS if m in summary])
    per_seed = markdown_table([(f"{r['seed']} {METHOD_TITLES[m]}", r["methods"][m]) for r in results
                               for m in METHODS if m in r["methods"]], first="seed, method")
    return f"Mean over seeds {seeds}:\n\n{mean}\n\nPer seed:\n\n{per_seed}"


@dataclass
class RealFramesConfig:
    """The real-frames check: a sparse stretch of a recording against the fusion of all of it."""

    voxel_size: float = param(0.05, "map voxel edge, metres (the map's other settings are its defaults)", low=0.005, high=1.0)
    first_frame: int = param(0, "the sparse run draws from frames [first_frame, first_frame + sparse_frames)", low=0,
                             high=1_000_000)
    sparse_frames: int = param(100, "how many frames the sparse run draws from", low=1, high=1_000_000)
    stride: int = param(5, "the sparse run uses every stride-th of those frames", low=1, high=10_000)
    reference_frames: int = param(500, "the reference fuses frames [0, reference_frames), fusion only", low=1, high=1_000_000)
    threshold: float = param(0.05, "precision / recall distance, metres", low=0.001, high=1.0)
    num_points: int = param(200_000, "points sampled on each mesh", low=1000, high=10_000_000)
    gravity: str = param("estimate", "frame of the sparse map: 'estimate' (gravity-aligned, as ssr reconstruct "
                         "maps a recording) or 'z_up' (the recording's own frame)", choices=["estimate", "z_up"])

    def validate(self) -> "RealFramesConfig":
        return validate_config(self)


def fuse_recording(recording, pipeline, stride: int, limit: int | None, start: int = 0) -> int:
    """Integrate every ``stride``-th frame of the ``limit`` frames from frame ``start`` of ``recording``;
    returns how many were used."""
    from ssr_ros.errors import InvalidFrame, InvalidPose
    from ssr_ros.reconstruction import SkippedFrame

    used = 0
    count = None if limit is None else (limit + stride - 1) // stride
    for frame in recording.frames(stride, count, start):
        if isinstance(frame, SkippedFrame):
            continue
        try:
            pipeline.integrate(frame)
        except (InvalidFrame, InvalidPose):
            continue
        used += 1
    return used


@dataclass
class RealFramesReference:
    """The reference of the real-frames check: the fusion of many frames of the recording, in the
    recording's frame. ``vertices`` (V, 3) and ``triangles`` (T, 3) are its fusion-only mesh; ``map``
    the fused map, which tells where its frames looked (:meth:`seen`)."""

    vertices: np.ndarray
    triangles: np.ndarray
    map: object

    def seen(self, points: np.ndarray) -> np.ndarray:
        """(P,) bool: the reference's frames saw where ``points`` (P, 3) lie, as surface (a fused
        voxel) or as free space. Elsewhere a completed surface can be neither confirmed nor refuted."""
        points = torch.as_tensor(np.asarray(points, np.float32).reshape(-1, 3))
        observed = self.map.query(points, include_predicted=False)["weight"] > 0
        free = self.map.free_space
        if free is not None:
            observed |= free.query(torch.floor(points / self.map.voxel_size).to(torch.int64)).to(observed.device)
        return observed.cpu().numpy()


def real_frames_reference(path, config: RealFramesConfig | None = None) -> RealFramesReference:
    """The fusion of the recording's first ``reference_frames`` (fusion only, the recording's frame)."""
    from ssr_ros.completion.inference import CompletionConfig
    from ssr_ros.map import TSDFConfig
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig
    from ssr_ros.reconstruction import open_recording

    config = (config or RealFramesConfig()).validate()
    pipeline = MappingPipeline(PipelineConfig(map=TSDFConfig(voxel_size=config.voxel_size),
                                              completion=CompletionConfig(type="none")))
    fuse_recording(open_recording(path), pipeline, 1, config.reference_frames)
    mesh = pipeline.map.mesh(include_predicted=False)
    return RealFramesReference(mesh.vertices, mesh.triangles, pipeline.map)


def evaluate_real_frames(path, completion, config: RealFramesConfig | None = None, reference=None, progress: bool = True,
                         objects: bool = True) -> dict:
    """Fusion only vs fusion + completion on a sparse stretch of a real recording.

    The map of every ``stride``-th of the ``sparse_frames`` frames from ``first_frame`` is built through
    ``MappingPipeline`` (completion config ``completion``) and completed, then (``objects``, as
    ``ssr reconstruct`` does) its objects refined with the packaged shape prior; its fusion-only mesh
    (``mesh(include_predicted=False)``) and its completed mesh are scored against ``reference``
    (a :class:`RealFramesReference`; default: :func:`real_frames_reference`, the fusion of the
    first ``reference_frames``): precision, recall and F-score at ``threshold``, accuracy,
    completeness, triangle counts; and, since completion puts surface where the sparse frames did
    not look and the reference's frames may not have looked either, ``unseen_by_reference`` (the
    share of the mesh's points where no reference frame looked) and ``precision_seen`` (precision
    over the others: those the reference can confirm or refute). path: anything
    ``ssr_ros.reconstruction.open_recording`` reads.
    """
    from ssr_ros.evaluation.mesh import mesh_scores, sample_surface
    from ssr_ros.geometry.gravity import GravityConfig
    from ssr_ros.map import TSDFConfig
    from ssr_ros.pipeline import MappingPipeline, PipelineConfig
    from ssr_ros.reconstruction import open_recording

    config = (config or RealFramesConfig()).validate()
    seconds: dict[str, float] = {}
    if reference is None:
        if progress:
            _say(f"fusing the first {config.reference_frames} frames of {path} (the reference)", "real-frames")
        start = time.perf_counter()
        reference = real_frames_reference(path, config)
        seconds["reference"] = time.perf_counter() - start
    reference_points = sample_surface(reference.vertices, reference.triangles, config.num_points, seed=1)
    start = time.perf_counter()
    pipeline = MappingPipeline(PipelineConfig(map=TSDFConfig(voxel_size=config.voxel_size), completion=completion,
                                              gravity=GravityConfig(mode=config.gravity)))
    used = fuse_recording(open_recording(path), pipeline, config.stride, config.sparse_frames, config.first_frame)
    pipeline.settle_gravity()
    seconds["integrate"] = time.perf_counter() - start
    if progress:
        _say(f"integrated {used} frames; completing the map", "real-frames")
    start = time.perf_counter()
    chunks = pipeline.complete(everything=True)
    seconds["complete"] = time.perf_counter() - start
    refined = None
    if objects and pipeline.completion_enabled:
        start = time.perf_counter()
        refined = pipeline.refine_objects(pipeline.load_shape_prior())
        seconds["objects"] = time.perf_counter() - start
    # scored in the recording's frame, where the reference lies
    meshes = {"fusion": pipeline.pose_frame_mesh(include_predicted=False), "completion": pipeline.pose_frame_mesh()}
    result = {"path": str(path), "config": config_to_dict(config), "frames_used": used, "chunks_completed": chunks,
              "completion_enabled": pipeline.completion_enabled, "completion_withheld": pipeline.completion_withheld,
              "objects": None if refined is None else refined.counts(),
              "layout": None if pipeline.layout_report is None else pipeline.layout_report.as_dict(),
              "reference": {"frames": config.reference_frames, "triangles": int(len(reference.triangles))}}
    for name, mesh in meshes.items():
        points = sample_surface(mesh.vertices, mesh.triangles, config.num_points, seed=0) if mesh.num_triangles else np.zeros((0, 3))
        scores = mesh_scores(points, reference_points, config.threshold).as_dict()
        seen = reference.seen(points) if len(points) else np.zeros(0, bool)
        scores["unseen_by_reference"] = float(1.0 - seen.mean()) if len(points) else 0.0
        scores["precision_seen"] = mesh_scores(points[seen], reference_points, config.threshold).precision
        scores["triangles"] = mesh.num_triangles
        scores["predicted_vertices"] = int(mesh.predicted.sum())
        result[name] = scores
    result["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return result


def real_frames_table(result: dict) -> str:
    """Markdown: one row each for fusion only and fusion + completion of :func:`evaluate_real_frames`."""
    from ssr_ros.evaluation.comparison import Column, markdown_table

    columns = (Column("precision", "prec", "%"), Column("recall", "recall", "%"), Column("fscore", "F@5cm", "%"),
               Column("accuracy", "acc", "cm"), Column("triangles", "triangles", ""),
               Column("unseen_by_reference", "unseen by the reference", "%"),
               Column("precision_seen", "prec where the reference looked", "%"))
    return markdown_table([("fusion only", result["fusion"]), ("fusion + completion", result["completion"])], columns)


def chunk_latency(model: torch.nn.Module, chunk_size: int = 32, repeats: int = 5, threads: int | None = None) -> dict:
    """Median / min seconds of one forward pass on a (1, ..., S, S, S) chunk on the model's device,
    as the pipeline runs it (:func:`~ssr_ros.completion.graphs.network_forward`, without CUDA graphs)."""
    from ssr_ros.completion.graphs import network_forward
    from ssr_ros.completion.network import SSRUNet

    assert isinstance(model, SSRUNet)
    if threads:
        torch.set_num_threads(threads)
    device = next(model.parameters()).device
    config = model.config
    geometry = torch.zeros(1, 2, chunk_size, chunk_size, chunk_size, device=device)
    geometry[:, 0] = 1.0
    color = torch.zeros(1, config.color_channels, chunk_size, chunk_size, chunk_size, device=device) if config.use_color else None
    forward = network_forward(model, device, cuda_graphs=False)
    times = []
    with torch.no_grad():
        forward(geometry, color, 0.15)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            forward(geometry, color, 0.15)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return {"chunk_size": chunk_size, "median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "threads": torch.get_num_threads(), "device": str(device)}
