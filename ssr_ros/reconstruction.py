"""Offline reconstruction: a recording (rosbag2 or dataset folder) through the mapping pipeline.

This is the library behind ``ssr reconstruct``; it holds no fusion, completion or saving logic
of its own but drives :class:`ssr_ros.pipeline.MappingPipeline`, the object the ROS node uses:

1. :func:`open_recording` recognises the input (a rosbag2 directory / ``.db3`` / ``.mcap`` or a
   ScanNet, 7-Scenes, TUM or Replica folder) and gives a :class:`Recording`;
2. :func:`reconstruct` integrates its frames (start / stride / limit; frames with invalid depth or pose
   and frames whose files are missing or unreadable skipped and counted by reason, the run
   stopped with an error after too many unreadable ones in a row or in all), completes the map, saves it (``map.ssrmap``, ``mesh.ply``,
   ``mesh_semantic.ply``, ``voxels.ply``), renders previews, scores it against ground truth and
   writes ``summary.json``. Ctrl-C (KeyboardInterrupt) during integration or completion stops
   that stage; what was built is still saved and the summary says ``interrupted``. A run that
   fails part way (too many unreadable frames, a recording that breaks off) also saves what was
   built and writes the summary, with ``error``, before raising.

Ground truth (:func:`load_ground_truth`): a ``ssr synth`` GT directory (``gt_volume.npz`` and
``gt_mesh.ply``: completion, semantics and mesh scores) or a mesh file in the frame of the
poses (mesh scores only, e.g. the Replica GT mesh). For a mesh, the GT surface is also scored
on the part the used frames saw (``mesh_seen``), see :class:`SurfaceVisibility`.
"""

from __future__ import annotations

import dataclasses

import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssr_ros.atomic_file import atomic_write
from ssr_ros.config import config_to_dict
from ssr_ros.errors import (
    ConfigError, DatasetError, DepthOutOfRange, InvalidFrame, InvalidPose, MapFileError, SsrError, UnreadableFrame,
)
from ssr_ros.evaluation.mesh import DEFAULT_THRESHOLD, MeshScores, mesh_scores, sample_surface
from ssr_ros.geometry import Frame
from ssr_ros.geometry.gravity import Z_UP
from ssr_ros.map.map_file import MAP_FILE
from ssr_ros.pipeline import MappingPipeline

FOLDER_KINDS = ("scannet", "7scenes", "tum", "replica", "redwood")
INPUT_KINDS = ("auto", "rosbag2", *FOLDER_KINDS)
"""What ``open_recording`` reads; ``auto`` recognises the layout."""

SUMMARY_FILE = "summary.json"


# ---------------------------------------------------------------------------- inputs
@dataclass
class SkippedFrame:
    """A frame of the recording that cannot be used, and why."""

    reason: str
    detail: str = ""
    """The full message (e.g. naming the file)."""
    unreadable: bool = False
    """A file of the frame is missing or unreadable (these count towards the run's limits)."""


@dataclass
class Recording:
    """An opened recording: its kind, the reader, and how many frames it holds (None if unknown)."""

    kind: str
    path: Path
    reader: Any
    total: int | None
    details: dict[str, Any] = field(default_factory=dict)

    def frames(self, stride: int = 1, limit: int | None = None, start: int = 0) -> Iterator[Frame | SkippedFrame]:
        """Every ``stride``-th frame from frame ``start`` (0: the first) on, at most ``limit`` of them;
        unusable ones as ``SkippedFrame``."""
        if stride < 1:
            raise ConfigError(f"stride={stride} must be at least 1")
        if start < 0:
            raise ConfigError(f"start={start} must be at least 0")
        emitted = 0
        if self.kind == "rosbag2":
            for index, frame in enumerate(self.reader):
                if limit is not None and emitted >= limit:
                    return
                if index < start or (index - start) % stride:
                    continue
                emitted += 1
                yield frame
            return
        for index in range(start, len(self.reader), stride):
            if limit is not None and emitted >= limit:
                return
            emitted += 1
            try:
                yield self.reader.frame(index)
            except UnreadableFrame as error:
                yield SkippedFrame(error.reason, str(error), unreadable=True)
            except DatasetError as error:
                # an invalid pose file is one bad frame; a missing / unreadable file is not
                if isinstance(error.__cause__, (InvalidPose, InvalidFrame)):
                    yield SkippedFrame(f"invalid pose or depth ({type(error.__cause__).__name__})")
                else:
                    raise

    def frames_to_use(self, stride: int = 1, limit: int | None = None, start: int = 0) -> int | None:
        """How many frames ``frames(stride, limit, start)`` yields (None when the total is unknown)."""
        if self.total is None:
            return limit
        count = (max(self.total - start, 0) + stride - 1) // stride
        return count if limit is None else min(count, limit)


def is_rosbag(path: Path) -> bool:
    """A rosbag2 directory (metadata.yaml or an .mcap inside) or its .db3 / .mcap file."""
    if path.is_file():
        return path.suffix in (".db3", ".mcap")
    return path.is_dir() and ((path / "metadata.yaml").exists() or any(path.glob("*.mcap")))


def open_recording(
    path: str | Path,
    kind: str = "auto",
    *,
    color_topic: str | None = None,
    depth_topic: str | None = None,
    camera_info_topic: str | None = None,
    labels_topic: str | None = None,
    pose_topic: str | None = None,
    pose_source: str = "auto",
    world_frame: str | None = None,
    depth_scale: float | None = None,
    label_dir: str | None = None,
    camera_in_pose_frame: np.ndarray | None = None,
    pose_child_frame: str = "",
    label_confidence_topic: str | None = None,
    label_probabilities_topic: str | None = None,
    probabilities_layout: str = "hwc",
    num_classes: int | None = None,
    instance_dir: str | None = None,
    instances_topic: str | None = None,
) -> Recording:
    """Open a rosbag2 file or a dataset folder; DatasetError names what is missing.

    Topic arguments apply to bags (default: recognised by message type and name), ``label_dir``
    to ScanNet folders (default: ``label-filt/`` or ``label/`` when present); ``depth_scale``
    (metres per unit of 16-bit depth) overrides the format's default. ``camera_in_pose_frame`` /
    ``pose_child_frame``: a bag's pose topic tracks another frame than the camera's (see
    :class:`ssr_ros.data.rosbag_reader.RosbagReader`). ``label_confidence_topic`` /
    ``label_probabilities_topic`` (with ``probabilities_layout`` and the taxonomy's
    ``num_classes``): a bag's 2D semantics in the other forms the node takes. ``instance_dir``:
    ScanNet folders' per-frame 2D instance ids (default: ``instance-filt/`` or ``instance/``);
    ``instances_topic``: a bag's 2D instance image topic (mono8/mono16).
    """
    from ssr_ros.data import folders
    from ssr_ros.data.rosbag_reader import RosbagReader

    path = Path(path)
    if kind not in INPUT_KINDS:
        raise ConfigError(f"input kind '{kind}' is unknown; expected one of {list(INPUT_KINDS)}")
    if not path.exists():
        raise DatasetError(f"input '{path}' does not exist")
    if kind == "auto":
        kind = "rosbag2" if is_rosbag(path) else "folder"
    if kind == "rosbag2":
        options: dict[str, Any] = dict(color_topic=color_topic, depth_topic=depth_topic, camera_info_topic=camera_info_topic,
                                       labels_topic=labels_topic, pose_topic=pose_topic, pose_source=pose_source,
                                       camera_in_pose_frame=camera_in_pose_frame, pose_child_frame=pose_child_frame,
                                       label_confidence_topic=label_confidence_topic,
                                       label_probabilities_topic=label_probabilities_topic,
                                       probabilities_layout=probabilities_layout, num_classes=num_classes,
                                       instances_topic=instances_topic)
        if world_frame:
            options["world_frame"] = world_frame
        if depth_scale is not None:
            options["depth_scale"] = depth_scale
        reader = RosbagReader(path, **options)
        topics = {"depth": reader.depth_topic, "color": reader.color_topic, "labels": reader.labels_topic,
                  "label_confidence": reader.label_confidence_topic,
                  "label_probabilities": reader.label_probabilities_topic,
                  "instances": reader.instances_topic,
                  "camera_info": reader.camera_info_topic, "pose": reader.pose_topic or "/tf"}
        return Recording("rosbag2", reader.path, reader, reader.message_count(reader.depth_topic), {"topics": topics})
    if label_dir is not None and kind not in ("folder", "scannet"):
        raise ConfigError(f"a label folder is only read for ScanNet layouts, not '{kind}'")
    if instance_dir is not None and kind not in ("folder", "scannet"):
        raise ConfigError(f"an instance folder is only read for ScanNet layouts, not '{kind}'")
    classes = {"scannet": folders.ScanNetFolder, "7scenes": folders.SevenScenesFolder,
               "tum": folders.TUMFolder, "replica": folders.ReplicaFolder, "redwood": folders.RedwoodFolder}
    if kind == "folder":
        reader = folders.open_folder(path)  # recognise the layout, then reopen with the options
        kind = {v: k for k, v in classes.items()}[type(reader)]
        if label_dir is not None and kind != "scannet":
            raise ConfigError(f"a label folder is only read for ScanNet layouts; '{path}' is {kind}")
        if instance_dir is not None and kind != "scannet":
            raise ConfigError(f"an instance folder is only read for ScanNet layouts; '{path}' is {kind}")
    options = {}
    if depth_scale is not None and kind != "replica":
        options["depth_scale"] = depth_scale
    if label_dir is not None:
        options["label_dir"] = label_dir
    if instance_dir is not None:
        options["instance_dir"] = instance_dir
    reader = classes[kind](path, **options)
    return Recording(kind, Path(path), reader, len(reader))


# ---------------------------------------------------------------------------- ground truth
@dataclass
class GroundTruth:
    """A GT volume (dict of the ``gt_volume.npz`` arrays) and/or mesh ``(vertices, faces)``."""

    path: Path
    volume: dict[str, np.ndarray] | None = None
    mesh: tuple[np.ndarray, np.ndarray | None] | None = None


def load_ground_truth(path: str | Path) -> GroundTruth:
    """A ``ssr synth`` GT directory (gt_volume.npz [+ gt_mesh.ply]) or a mesh file (PLY/OBJ)."""
    from ssr_ros.evaluation.report import load_mesh, load_volume

    path = Path(path)
    if path.is_dir():
        volume_path, mesh_path = path / "gt_volume.npz", path / "gt_mesh.ply"
        if not volume_path.exists() and not mesh_path.exists():
            raise DatasetError(f"ground truth directory '{path}' holds neither gt_volume.npz nor gt_mesh.ply")
        return GroundTruth(path, load_volume(volume_path) if volume_path.exists() else None,
                           load_mesh(mesh_path) if mesh_path.exists() else None)
    if not path.exists():
        raise DatasetError(f"ground truth '{path}' does not exist")
    return GroundTruth(path, None, load_mesh(path))


class SurfaceVisibility:
    """Which points of a GT surface the integrated frames saw.

    A point counts as seen when it projects into a frame's image, lies in the map's depth range,
    and is within ``tolerance`` metres of the depth measured at its pixel (so occluded points do
    not count). points: (N, 3) float64 metres in the world frame of the poses.
    """

    def __init__(self, points: np.ndarray, tolerance: float, min_depth: float, max_depth: float) -> None:
        self.points = np.asarray(points, dtype=np.float64)
        self.seen = np.zeros(len(self.points), dtype=bool)
        self.tolerance, self.min_depth, self.max_depth = float(tolerance), float(min_depth), float(max_depth)

    def update(self, frame: Frame) -> None:
        T = np.asarray(frame.T_world_cam, dtype=np.float64)
        p = (self.points - T[:3, 3]) @ T[:3, :3]  # world -> camera: R^T (p - t)
        z = p[:, 2]
        K = frame.intrinsics
        u, v, inside = K.nearest_pixel(p)
        inside &= (z > self.min_depth) & (z < self.max_depth)
        index = np.flatnonzero(inside)
        measured = np.asarray(frame.depth, dtype=np.float64)[v[index], u[index]]
        ok = np.isfinite(measured) & (measured > 0) & (np.abs(measured - z[index]) < self.tolerance)
        self.seen[index[ok]] = True


def seen_mesh_scores(pred_points: np.ndarray, gt_points: np.ndarray, seen: np.ndarray, threshold: float) -> MeshScores:
    """Accuracy / precision against the whole GT surface, completeness / recall against its seen part."""
    whole = mesh_scores(pred_points, gt_points, threshold)
    part = mesh_scores(pred_points, gt_points[seen], threshold)
    p, r = whole.precision, part.recall
    fscore = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return MeshScores(whole.accuracy, part.completeness, p, r, fscore, threshold, whole.num_pred_points, part.num_gt_points)


# ---------------------------------------------------------------------------- the run
@dataclass
class ReconstructionOptions:
    """How ``reconstruct`` runs (the map itself is configured by the pipeline's PipelineConfig)."""

    stride: int = 1
    limit: int | None = None
    start: int = 0
    """Index of the first frame used (0: the recording's first)."""
    complete: bool = True
    objects: bool = True
    """After completion, refine the map's objects once (``objects`` config: the shape prior, or a list
    only with ``type: none``) and write ``objects.json``; not without completion."""
    previews: bool = True
    formats: tuple[str, ...] = ()
    ground_truth: GroundTruth | None = None
    threshold: float = DEFAULT_THRESHOLD
    gt_points: int = 200_000
    progress: bool = True
    max_unreadable_run: int | None = 20
    """Stop (with an error, saving what was built) after this many unreadable frames in a row; None: never."""
    max_unreadable: int | None = None
    """Stop (with an error, saving what was built) after this many unreadable frames in all; None: never."""
    semantics: Any = None
    """A :class:`ssr_ros.semantics.folder.SemanticsFolder` adding 2D semantics to the frames, or None."""
    segmenter: Any = None
    """A :class:`ssr_ros.semantics.segmenter.Segmenter` labelling each color frame (inline), or None."""
    started_at: float | None = None
    """``time.perf_counter()`` when the run began (the command's start, so that start-up counts in the
    whole run's time); None: when :func:`reconstruct` is called."""


def stage_times(wall: dict[str, float], whole_s: float) -> dict[str, float]:
    """``wall`` (stage -> seconds) with ``other_s``, the part of ``whole_s`` no stage accounts for, so
    that the stages add up to the whole run."""
    out = dict(wall)
    out["other_s"] = max(0.0, whole_s - sum(wall.values()))
    return out


def check_writable(directory: str | Path) -> Path:
    """Create ``directory`` and make sure a file can be written there (MapFileError otherwise)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".ssr_write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise MapFileError(f"output directory '{directory}' is not writable: {error.strerror or error}") from error
    return directory


def _peak_memory() -> dict[str, float]:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    memory = {"peak_rss_mb": rss / 1024.0 if sys.platform != "darwin" else rss / 2**20}
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        memory["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return memory


def _say(message: str) -> None:
    print(f"[reconstruct] {message}", file=sys.stderr, flush=True)


CLOSE_RANGE_VOXELS = 15
"""A recording whose median depth spans fewer voxels than this is close-range for its voxel size:
things a camera at that distance looks at come out as a few blocks (the Princeton shelf, median
depth 0.40 m: 8 voxels at the default 0.05 m). A robot's low path through a room looks at the
furniture from about 0.9 m (19 voxels; completion lifts a generated room's mesh F-score from 35 to
47 there), hand-held room recordings from 1.7-2 m (35-40 voxels): rooms, not close range."""


def median_depth(frame: Frame, step: int = 8) -> float | None:
    """Median of the valid depths (:meth:`Frame.valid_depth_mask`) of every ``step``-th pixel of
    ``frame``, metres."""
    valid = np.asarray(frame.depth)[::step, ::step][frame.valid_depth_mask()[::step, ::step]]
    return float(np.median(valid)) if valid.size else None


def scale_summary(frame_medians: list[float], voxel_size: float, completion: bool) -> dict[str, Any] | None:
    """How the recording's depth compares with the voxel: the median over frames of each frame's
    median depth, that depth in voxels and, for a close-range recording (fewer than
    ``CLOSE_RANGE_VOXELS``), a hint naming a voxel size 50 times finer than that depth (and, with
    completion on, that the completion network is made for rooms at its own voxel size)."""
    if not frame_medians:
        return None
    depth = float(np.median(frame_medians))
    voxels = depth / voxel_size
    hint = None
    if voxels < CLOSE_RANGE_VOXELS:
        suggested = max(0.005, round(depth / 50 / 0.005) * 0.005)
        hint = (f"close-range recording: its median depth, {depth:.2f} m, is {voxels:.0f} voxels of {voxel_size} m, so "
                f"what the camera looks at comes out as a few blocks; try --voxel-size {suggested:g}")
        if completion:
            hint += (" --no-completion (the completion network knows rooms at its own voxel size and refuses "
                     "another)")
    return {"median_depth_m": round(depth, 3), "voxels_across_median_depth": round(voxels, 1), "hint": hint}


def reconstruct(pipeline: MappingPipeline, recording: Recording, out_dir: str | Path,
                options: ReconstructionOptions | None = None) -> dict[str, Any]:
    """Integrate ``recording`` into ``pipeline``, complete, save, preview, evaluate; returns the summary.

    The summary (also written to ``out_dir/summary.json``) holds the frames used and dropped by
    reason, wall times per stage that add up to the whole run (``speed.wall_s``, with ``setup_s``
    before the first frame and ``other_s`` for the rest), frames/s of fusion alone, of reading and
    fusing, and end to end, pipeline timings per stage, map size and memory, the
    written files and, with ground truth, the metrics. Raises DatasetError when no frame could
    be integrated (after writing the summary).
    """
    options = options or ReconstructionOptions()
    run_start = options.started_at if options.started_at is not None else time.perf_counter()
    out = check_writable(out_dir)
    wall: dict[str, float] = {}
    dropped: Counter = Counter()
    interrupted: str | None = None
    failure: SsrError | None = None
    unreadable: list[str] = []
    unreadable_run = 0
    frame_medians: list[float] = []
    gt = options.ground_truth
    visibility = None
    if gt is not None and gt.mesh is not None and gt.volume is None:
        vertices, faces = gt.mesh
        points = vertices if faces is None else sample_surface(vertices, faces, options.gt_points, seed=1)
        config = pipeline.config.map
        visibility = SurfaceVisibility(points, max(2 * config.voxel_size, 0.05), config.min_depth, config.max_depth)

    from tqdm import tqdm

    total = recording.frames_to_use(options.stride, options.limit, options.start)
    frames_read = 0
    start = time.perf_counter()
    wall["setup_s"] = start - run_start  # start-up, opening the recording, loading the model and the GT
    bar = tqdm(total=total, unit="frame", desc="integrate", disable=not options.progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for item in recording.frames(options.stride, options.limit, options.start):
            frames_read += 1
            if isinstance(item, SkippedFrame):
                dropped[item.reason] += 1
                if item.unreadable:
                    unreadable.append(item.detail or item.reason)
                    unreadable_run += 1
                    check_unreadable(unreadable, unreadable_run, options)
                else:
                    unreadable_run = 0
            else:
                unreadable_run = 0
                try:
                    if options.semantics is not None:
                        item = options.semantics.apply(item)
                    if options.segmenter is not None and item.rgb is not None:
                        start_segment = time.perf_counter()
                        item = dataclasses.replace(item, labels=None, label_confidence=None,
                                                   label_probs=options.segmenter(item.rgb))
                        wall["segment_s"] = wall.get("segment_s", 0.0) + time.perf_counter() - start_segment
                    pipeline.integrate(item)
                    depth = median_depth(item)
                    if depth is not None:
                        frame_medians.append(depth)
                except InvalidPose:
                    dropped["invalid pose"] += 1
                except DepthOutOfRange:
                    dropped["depth out of range"] += 1
                except InvalidFrame as error:
                    reason = "invalid semantics" if "semantics" in str(error) else None
                    dropped[reason or ("invalid depth" if "depth" in str(error) else "invalid frame")] += 1
                else:
                    if visibility is not None:
                        visibility.update(item)
            bar.update(1)
            if dropped:
                bar.set_postfix(dropped=sum(dropped.values()), refresh=False)
    except KeyboardInterrupt:
        interrupted = "integration"
    except SsrError as error:
        failure = error
    finally:
        bar.close()
    pipeline.settle_gravity()  # fuse the frames held for the gravity estimate (short or interrupted runs)
    wall["integrate_s"] = time.perf_counter() - start
    if interrupted:
        _say(f"interrupted after {frames_read} frames; saving what was built")
    if failure is not None:
        _say(f"stopped after {frames_read} frames: {failure}; saving what was built")
    for reason, count in getattr(recording.reader, "skipped", {}).items():
        dropped[reason] += count
    scale = scale_summary(frame_medians, pipeline.config.map.voxel_size,
                          options.complete and pipeline.completion_enabled)
    if scale and scale["hint"]:
        _say(scale["hint"])

    chunks = 0
    if options.complete and pipeline.completion_enabled and not interrupted and not failure and pipeline.frames_integrated:
        start = time.perf_counter()
        _say("completing the map")
        try:
            chunks = pipeline.complete(everything=True)
        except KeyboardInterrupt:
            interrupted = "completion"
            _say("completion interrupted; saving what was built")
        wall["complete_s"] = time.perf_counter() - start
    objects = None
    if (options.objects and options.complete and pipeline.completion_enabled and not interrupted and not failure
            and pipeline.frames_integrated):
        start = time.perf_counter()
        _say("refining objects")
        try:
            objects = pipeline.refine_objects(pipeline.load_shape_prior())
        except KeyboardInterrupt:
            interrupted = "objects"
            _say("object refinement interrupted; saving what was built")
        wall["objects_s"] = time.perf_counter() - start
    regularized = None
    if pipeline.regularizer is not None and not interrupted and not failure and pipeline.frames_integrated:
        _say("regularising the labels")
        regularized = dataclasses.asdict(pipeline.regularize())
        wall["regularize_s"] = regularized["seconds"]

    summary: dict[str, Any] = {
        "input": {"kind": recording.kind, "path": str(recording.path), **recording.details},
        "scale": scale,
        "frames": {"in_recording": recording.total, "read": frames_read, "integrated": pipeline.frames_integrated,
                   "dropped": sum(dropped.values()), "dropped_by_reason": dict(dropped),
                   "unreadable": len(unreadable), "unreadable_examples": unreadable[:5],
                   "start": options.start, "stride": options.stride, "limit": options.limit},
        "interrupted": interrupted,
        "error": None if failure is None else str(failure),
        "completion": {"enabled": pipeline.completion_enabled and options.complete, "chunks_completed": chunks,
                       "withheld": pipeline.completion_withheld,
                       "layout": None if pipeline.layout_report is None else pipeline.layout_report.as_dict()},
        "objects": None if objects is None else objects.counts(),
        "regularization": regularized,
        "config": config_to_dict(pipeline.config),
        "gravity": gravity_summary(pipeline),
        "semantics": semantics_summary(pipeline),
    }
    if pipeline.mono is not None:
        summary["mono"] = pipeline.mono.summary()
    if pipeline.frames_structural:
        _say("no semantic source: classes are structural labels (floor / wall / ceiling from planes, "
             "everything else '%s'); give labels or a segmenter for more" % pipeline.config.structure.others)
    files: list[Path] = []
    if pipeline.frames_integrated:
        start = time.perf_counter()
        files += pipeline.save(out, options.formats)
        if objects is not None:
            from ssr_ros.objects.object_list import save_object_list

            files.append(save_object_list(objects.objects, out / "objects.json",
                                          extra={"map": MAP_FILE, "voxel_size": pipeline.map.voxel_size}))
        wall["save_s"] = time.perf_counter() - start
        if pipeline.planning_summary:
            summary["planning"] = pipeline.planning_summary
        if options.previews:
            from ssr_ros.preview import write_previews

            start = time.perf_counter()
            with pipeline.lock:
                up = Z_UP if pipeline.T_world_map is not None else pipeline.world_up()  # aligned: z is up
                files += write_previews(pipeline.map, pipeline.taxonomy, out / "previews", method="mesh", up=up,
                                        semantic_source=pipeline.semantic_source, cameras=pipeline.camera_path)
            wall["previews_s"] = time.perf_counter() - start
    stats = pipeline.stats()
    integrate_s = stats["timings"]["integrate"]["total_s"]
    fps = pipeline.frames_integrated / integrate_s if integrate_s > 0 else None
    summary["speed"] = {
        "integrate_fps": fps,
        "read_fuse_fps": frames_read / wall["integrate_s"] if wall["integrate_s"] > 0 else None,
        "wall_s": wall,
        "pipeline_timings": stats.pop("timings"),
    }
    summary["map"] = stats
    summary["memory"] = _peak_memory()
    if gt is not None and pipeline.frames_integrated:
        start = time.perf_counter()
        summary["metrics"] = evaluate_against(pipeline, gt, visibility, options, fps)
        wall["evaluate_s"] = time.perf_counter() - start
    summary["files"] = sorted(str(p.relative_to(out.resolve())) if p.is_absolute() else str(p)
                              for p in (Path(f).resolve() for f in files))
    whole_s = time.perf_counter() - run_start
    summary["speed"]["whole_s"] = whole_s
    summary["speed"]["end_to_end_fps"] = frames_read / whole_s if whole_s > 0 else None
    summary["speed"]["wall_s"] = stage_times(wall, whole_s)
    write_summary(out, summary)
    if failure is not None:
        built = f"; what was built is saved in '{out}'" if pipeline.frames_integrated else ""
        raise DatasetError(f"{failure}{built}") from failure
    if not pipeline.frames_integrated:
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "the recording holds no frames"
        raise DatasetError(f"no frame of '{recording.path}' could be integrated ({reasons})")
    return summary


def check_unreadable(unreadable: list[str], run: int, options: ReconstructionOptions) -> None:
    """DatasetError when the unreadable frames so far (``run`` of them in a row) pass the limits."""
    limits = [("in a row", run, options.max_unreadable_run), ("in all", len(unreadable), options.max_unreadable)]
    for what, count, limit in limits:
        if limit is not None and count >= limit:
            raise DatasetError(
                f"{count} unreadable frames {what} (limit {limit}; the last: {unreadable[-1]}); "
                "check the recording or raise --max-unreadable-run / --max-unreadable"
            )


def evaluate_against(pipeline: MappingPipeline, gt: GroundTruth, visibility: SurfaceVisibility | None,
                     options: ReconstructionOptions, fps: float | None) -> dict[str, Any]:
    """Metrics of the pipeline's map against ``gt`` (see ``load_ground_truth``)."""
    from ssr_ros.evaluation.map_evaluation import evaluate_map

    with pipeline.lock:
        T_world_map = pipeline.T_world_map
        if gt.volume is not None:
            if T_world_map is not None:
                raise ConfigError(f"ground truth '{gt.path}' is a voxel volume in the poses' frame, compared voxel by voxel, "
                                  f"but the map is gravity-aligned (rotated); reconstruct with --up z")
            gt_voxel = float(gt.volume["voxel_size"])
            if not np.isclose(gt_voxel, pipeline.map.voxel_size):
                raise ConfigError(f"ground truth '{gt.path}' has {gt_voxel} m voxels but the map {pipeline.map.voxel_size} m; "
                                  f"reconstruct with --voxel-size {gt_voxel} (or regenerate the GT)")
            return evaluate_map(pipeline.map, gt.volume, gt.mesh, pipeline.taxonomy.names, fps=fps, num_points=options.gt_points)
        mesh = pipeline.pose_frame_mesh()  # the GT mesh lies in the poses' frame
    metrics: dict[str, Any] = {"gt": str(gt.path)}
    if mesh.num_triangles == 0:
        metrics["mesh"] = None
        return metrics
    pred = sample_surface(mesh.vertices, mesh.triangles, options.gt_points, seed=0)
    metrics["mesh"] = mesh_scores(pred, visibility.points, options.threshold).as_dict()
    metrics["mesh_seen"] = seen_mesh_scores(pred, visibility.points, visibility.seen, options.threshold).as_dict()
    metrics["mesh_seen"]["seen_fraction"] = float(visibility.seen.mean())
    if fps is not None:
        metrics["timing"] = {"fps": fps}
    return metrics


def semantics_summary(pipeline: MappingPipeline) -> dict[str, Any]:
    """Where the map's classes came from, for summary.json."""
    out: dict[str, Any] = {"source": pipeline.semantic_source, "frames_with_semantics": pipeline.frames_with_semantics,
                           "frames_structural_labels": pipeline.frames_structural}
    if pipeline.frames_structural and pipeline.structure is not None:
        out["structure"] = {"note": "structural labels only: floor / wall (/ ceiling) from gravity-aligned planes, "
                                    f"everything else '{pipeline.config.structure.others}'; no model",
                            **pipeline.structure.summary()}
    return out


def gravity_summary(pipeline: MappingPipeline) -> dict[str, Any]:
    """The alignment for summary.json: up, how it was found, T_aligned_world, and which file is in which frame."""
    if pipeline.gravity is None:
        return {"mode": pipeline.config.gravity.mode, "estimated": False, "held_frames": pipeline.held_frames}
    aligned = pipeline.T_world_map is not None
    return {
        "mode": pipeline.config.gravity.mode, **pipeline.gravity.as_dict(),
        "frames": {"map.ssrmap": "aligned (z up): p_aligned = T_aligned_world @ p_world" if aligned else "world",
                   "mesh.ply, mesh_semantic.ply, voxels.ply, metrics": "world (the recording's pose frame)",
                   "previews": "aligned (z up)" if aligned else "world"},
    }


def write_summary(out_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` atomically."""
    path = Path(out_dir) / SUMMARY_FILE
    with atomic_write(path, "summary") as handle:
        handle.write(json.dumps(summary, indent=2, default=_json_default).encode("utf-8"))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
