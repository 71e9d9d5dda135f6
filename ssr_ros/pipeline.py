"""The mapping pipeline: fusion, scheduled completion, meshing and saving behind one object.

Both the ROS node (``ssr_ros.ros.mapper_node``) and the offline ``ssr reconstruct`` drive this
class, so there is one copy of the logic. It is thread-safe: the node integrates frames in one
thread while completion runs in another. Completion holds the map lock only to extract chunks
and to write predictions back, never while the network runs, so integration is not blocked by
inference.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

import numpy as np
import torch

from ssr_ros.completion.inference import CompletionConfig, complete_chunks
from ssr_ros.completion.layout import LAYOUT_CLASSES, LayoutConfig, complete_layout
from ssr_ros.completion.scheduler import CompletionScheduler, SchedulerConfig
from ssr_ros.config import param, validate_config
from ssr_ros.devices import resolve_device
from ssr_ros.errors import ConfigError, DepthOutOfRange, InvalidInput, MapFileError
from ssr_ros.geometry import Frame, transform_points
from ssr_ros.geometry.gravity import Z_UP, CameraUpAccumulator, GravityConfig, GravityEstimate, estimate_alignment
from ssr_ros.map import SemanticTSDF, TSDFConfig, export_mesh_ply, export_voxels_ply
from ssr_ros.map.map_file import MAP_FILE
from ssr_ros.map.meshing import BlockMesh, MeshUpdate
from ssr_ros.map.semantic_tsdf import read_map
from ssr_ros.map.voxel_blocks import cpu_threads
from ssr_ros.map.voxel_export import OccupancyGrid2D, block_layers, flat_layers, select_voxels
from ssr_ros.mono.predictor import INPUT_MODES, MonoConfig
from ssr_ros.planning import PlanningConfig, PlanningOutputs, planning_outputs, planning_volume
from ssr_ros.planning.outputs import ESDF_FILE, outputs_of_volume, write_esdf, write_nav2_maps
from ssr_ros.objects.refinement import ObjectRefinementConfig
from ssr_ros.semantics.segmenter import SegmenterStageConfig
from ssr_ros.semantics.structure import StructuralLabeller, StructureConfig
from ssr_ros.regularization.config import RegularizationConfig
from ssr_ros.taxonomy import ClassTaxonomy

LOG = logging.getLogger("ssr_ros.pipeline")

SAVE_FORMATS = ("map", "mesh", "mesh_semantic", "voxels", "nav2", "esdf")
"""What ``save`` can write: map.ssrmap, mesh.ply, mesh_semantic.ply, voxels.ply, the Nav2 map_server
files occupancy.{pgm,yaml} and occupancy_predicted.{pgm,yaml}, and esdf.npz (see
:mod:`ssr_ros.planning`)."""

CAMERA_PATH_LIMIT = 4096
"""Camera positions kept for the previews' outside-in views (thinned evenly beyond this)."""


@dataclass
class PipelineConfig:
    """Everything the mapping pipeline needs; the node and ``ssr reconstruct`` share it."""

    device: str = param("auto", "map device: 'auto' (cuda when available), 'cpu', 'cuda' or 'cuda:N'")
    taxonomy: str = param("", "class taxonomy yaml; empty = the packaged ScanNet-20 taxonomy")
    input_mode: str = param("rgbd", "'rgbd': fuse the recorded depth; 'rgb': monocular, depth (and semantics) "
                            "predicted from color by the mono network, a recording's depth only scores it",
                            choices=list(INPUT_MODES))
    mono: MonoConfig = field(default_factory=MonoConfig)
    gravity: GravityConfig = field(default_factory=GravityConfig)
    map: TSDFConfig = field(default_factory=TSDFConfig)
    structure: StructureConfig = field(default_factory=StructureConfig)
    segmenter: SegmenterStageConfig = field(default_factory=SegmenterStageConfig)
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    planning: PlanningConfig = field(default_factory=PlanningConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    objects: ObjectRefinementConfig = field(default_factory=ObjectRefinementConfig)

    def validate(self) -> "PipelineConfig":
        validate_config(self)
        self.gravity.validate()
        self.map.validate()
        self.structure.validate()
        self.segmenter.validate()
        self.mono.validate()
        self.completion.validate()
        self.layout.validate()
        self.planning.validate()
        self.regularization.validate()
        self.objects.validate()
        return self


@dataclass
class StageTimer:
    """Count, total and last duration of one pipeline stage, seconds."""

    count: int = 0
    total_s: float = 0.0
    last_s: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total_s += seconds
        self.last_s = seconds

    @property
    def mean_s(self) -> float:
        return self.total_s / self.count if self.count else 0.0


def load_completion_model(config: CompletionConfig) -> torch.nn.Module | None:
    """The network for ``config`` or None for fusion only.

    ``type: none`` gives None. An explicit ``weights`` path must load (MapFileError
    otherwise); when the packaged default weights are missing the pipeline logs a warning
    and maps without completion.
    """
    if config.type == "none":
        return None
    from ssr_ros.completion.weights import default_weights_path, load_model

    device = resolve_device(config.device)
    if config.weights:
        return load_model(config.weights, device, expected_type="ssr_unet")
    path = default_weights_path()
    if not Path(path).exists():
        LOG.warning("default completion weights %s not found; mapping without completion", path)
        return None
    return load_model(path, device, expected_type="ssr_unet")


WRITE_SLAB_BLOCKS = 2
"""Block layers (along x) per lock holding of a completion write-back (:class:`_LockedChunkAccess`)."""


class _LockedChunkAccess:
    """The map as completion sees it, holding the pipeline lock only while it copies or writes.

    Extraction copies the blocks (and seen-free cells) of the chunk's box under the lock and builds
    the dense chunk from the copy without it; write-back goes in slabs of ``WRITE_SLAB_BLOCKS``
    block layers along x, each under the lock, which is released between slabs. Both give the map
    that extraction and write-back of the whole box under one holding give (every voxel is read or
    written on its own), while integration waits at most for one copy or slab: the room layout reads
    and writes the box of the whole map, which held the lock for 1-4 s of a 640x480 map.
    """

    def __init__(self, pipeline: "MappingPipeline") -> None:
        self._pipeline = pipeline

    def extract_chunk(self, origin_voxel, size):
        from ssr_ros.map.chunk_io import extract_chunk

        with self._pipeline.lock:
            layer = self._pipeline.map.chunk_snapshot(origin_voxel, size)
        with self._pipeline._threads():
            return extract_chunk(layer, origin_voxel, size)

    def allocated_block_coords(self):
        with self._pipeline.lock:
            return self._pipeline.map.allocated_block_coords()

    @property
    def block_size(self) -> int:
        return self._pipeline.map.block_size

    @property
    def voxel_size(self) -> float:
        return self._pipeline.map.voxel_size

    def write_predictions(self, origin_voxel, tsdf, color=None, semantics_probs=None, confidence=None) -> int:
        origin = [int(v) for v in torch.as_tensor(origin_voxel).reshape(-1).tolist()]
        tsdf = torch.as_tensor(tsdf)
        if len(origin) != 3 or tsdf.dim() != 3:  # the map's own checks name what is wrong
            return self._own_change(self._pipeline.map.write_predictions, origin_voxel, tsdf, color, semantics_probs,
                                    confidence)
        block = self._pipeline.map.block_size
        step = WRITE_SLAB_BLOCKS * block
        cuts = list(range(0, tsdf.shape[0], step))
        if len(cuts) > 1 and origin[0] % block:  # slabs on block boundaries: each block is written by one slab
            first = block - origin[0] % block
            cuts = [0] + list(range(first, tsdf.shape[0], step))
        written = 0
        for start, stop in zip(cuts, cuts[1:] + [tsdf.shape[0]]):
            part = slice(start, stop)
            written += self._own_change(
                self._pipeline.map.write_predictions, [origin[0] + start, origin[1], origin[2]], tsdf[part],
                None if color is None else torch.as_tensor(color)[part],
                None if semantics_probs is None else torch.as_tensor(semantics_probs)[part],
                None if confidence is None else torch.as_tensor(confidence)[part])
        return written

    def clear_predictions(self, voxels):
        return self._own_change(self._pipeline.map.clear_predictions, voxels)

    def _own_change(self, change, *args, **kwargs):
        pipeline = self._pipeline
        with pipeline.lock:
            pipeline._collect_changes()  # integration changes up to now feed the scheduler
            result = change(*args, **kwargs)
            pipeline._seen_counter = pipeline.map.update_counter  # our own writes do not
            return result


class MappingPipeline:
    """Fuse frames, complete chunks near the camera, mesh, save and load; thread-safe.

    Frames: the map lives in a gravity-aligned frame ("aligned": z up) related to the frame of
    the incoming poses ("world") by the rotation :attr:`T_aligned_world`
    (``config.gravity``). With ``gravity.mode: z_up`` the two are the same. Otherwise the first
    ``gravity.estimate_frames`` frames are held back (validated, not yet fused) until the
    alignment is estimated from them (:func:`ssr_ros.geometry.gravity.estimate_alignment`), then
    fused; every frame is fused with the pose ``T_aligned_world @ T_world_cam``, so the map, its
    chunks and completion are all in the aligned frame. :meth:`settle_gravity` decides early
    (fewer frames); :meth:`save` does so before writing.
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        taxonomy: ClassTaxonomy | None = None,
        model: torch.nn.Module | None | str = "from_config",
    ) -> None:
        self.config = (config or PipelineConfig()).validate()
        self.taxonomy = taxonomy or ClassTaxonomy.load(self.config.taxonomy or None)
        self.device = resolve_device(self.config.device)
        self.map = SemanticTSDF(self.config.map, self.taxonomy.num_classes, self.device)
        self.model = load_completion_model(self.config.completion) if model == "from_config" else model
        self.contract_notes = self._check_contract()
        self.completion_withheld = self._withhold_uncalibrated_model()
        completion = self.config.completion
        self.scheduler = CompletionScheduler(
            self.config.scheduler, completion.chunk_size, completion.overlap, self.config.map.block_size
        )
        self.lock = threading.RLock()
        self._mesh_lock = threading.RLock()
        """Serialises meshing; taken before ``lock`` (never while holding it), so the marching
        cubes of an incremental update run outside ``lock`` without blocking integration."""
        self.regularizer, self.regularized = self._build_regularizer()
        self.layout_report = None
        """What the last room-layout completion found and wrote (:class:`LayoutReport`), None before it ran."""
        self._layout_frames = -1  # frames integrated when the layout last ran
        self._layout_time = -float("inf")
        self.timers = {name: StageTimer() for name in ("integrate", "complete", "layout", "regularize", "objects", "mesh", "planning", "save")}
        self.frames_integrated = 0
        self.chunks_completed = 0
        self.last_camera_position: np.ndarray | None = None
        self._camera_path: list[np.ndarray] = []  # fused camera positions, map frame, decimated
        self.last_stamp_ns: int | None = None
        self._seen_counter = 0
        self._camera_up = CameraUpAccumulator()  # of the fused poses, map frame
        gravity = self.config.gravity
        self.gravity: GravityEstimate | None = None if gravity.needs_frames else estimate_alignment([], gravity)
        self._held_frames: list[Frame] = []
        self.planning_summary: dict[str, Any] = {}  # of the planner outputs last saved (floor, cells)
        self.structure = (StructuralLabeller(self.config.structure, self.taxonomy)
                          if self.config.structure.mode != "off" else None)
        self.semantic_source_expected = False
        """Set by the caller when a semantic source is configured (a label topic, a segmenter):
        then ``structure.mode: auto`` leaves frames without semantics unlabelled."""
        self.frames_with_semantics = 0
        self.frames_structural = 0
        self.mono = None
        """The monocular input stage (``input_mode: rgb``), else None."""
        if self.config.input_mode == "rgb":
            from ssr_ros.mono.stage import MonoDepthStage

            self.mono = MonoDepthStage(self.config.mono, self.taxonomy.num_classes)
            self.semantic_source_expected = self.config.mono.semantics

    @property
    def semantic_source(self) -> str:
        """What the map's classes come from: 'frames' (2D semantics that came with the frames),
        'structure' (floor / wall / ceiling from planes, no model), 'frames+structure', or 'none'."""
        parts = [name for name, count in (("frames", self.frames_with_semantics),
                                          ("structure", self.frames_structural)) if count]
        return "+".join(parts) or "none"

    def _structural_labels_apply(self) -> bool:
        if self.structure is None:
            return False
        if self.config.structure.mode == "on":
            return True
        return not self.semantic_source_expected and self.frames_with_semantics == 0

    @property
    def camera_path(self) -> np.ndarray:
        """(N, 3) positions of the fused cameras in the map frame, in order (at most
        CAMERA_PATH_LIMIT, evenly thinned over long runs)."""
        return np.array(self._camera_path, dtype=np.float64).reshape(-1, 3)

    def world_up(self) -> np.ndarray:
        """The map frame's up direction as the fused cameras saw it (their mean -y axis), or z.

        Hand-held and robot cameras are held roughly upright, so this recovers "up" for datasets
        whose world frame is a camera's (7-Scenes, TUM) mapped with ``gravity.mode: z_up``; in a
        gravity-aligned map it is close to z.
        """
        try:
            return self._camera_up.up()
        except InvalidInput:
            return Z_UP.copy()

    @property
    def T_aligned_world(self) -> np.ndarray | None:
        """(4, 4) rotation from the poses' frame to the map's gravity-aligned frame (identity for
        ``gravity.mode: z_up``); None while the first frames are still held for the estimate."""
        return None if self.gravity is None else self.gravity.T_aligned_world.copy()

    @property
    def T_world_map(self) -> np.ndarray | None:
        """(4, 4) rotation from the map frame back to the poses' frame; None when they are the same
        (or while the alignment is still being estimated)."""
        if self.gravity is None or self.gravity.is_identity:
            return None
        return self.gravity.T_aligned_world.T.copy()  # a pure rotation: its inverse is its transpose

    @property
    def held_frames(self) -> int:
        """Frames held back until the gravity alignment is estimated."""
        return len(self._held_frames)

    def settle_gravity(self) -> GravityEstimate | None:
        """Estimate the alignment now from the frames held so far and fuse them.

        Nothing to do (returns the current estimate, None if no frame came yet) when the
        alignment is already known. If the estimate fails (e.g. the cameras' up axes cancel
        out), the map stays in the poses' frame and a warning is logged. The fusion of the held
        frames counts in the ``integrate`` timer.
        """
        start = time.perf_counter()
        with self.lock:
            fused = self._settle_gravity()
        if fused:
            self.timers["integrate"].add(time.perf_counter() - start)
        return self.gravity

    def _settle_gravity(self) -> int:
        """:meth:`settle_gravity` without timing (call under the lock); returns the frames fused."""
        if self.gravity is not None or not self._held_frames:
            return 0
        frames, self._held_frames = self._held_frames, []
        try:
            self.gravity = estimate_alignment(frames, self.config.gravity)
        except InvalidInput as error:
            LOG.warning("gravity estimate failed (%s); mapping in the poses' frame", error)
            self.gravity = GravityEstimate(np.eye(4), Z_UP.copy(), 0.0, "z_up", frames=len(frames),
                                           details={"failed": str(error)})
        LOG.info("gravity: up %s (%s), wall yaw %.1f deg from %d frames", np.round(self.gravity.up, 4).tolist(),
                 self.gravity.source, np.degrees(self.gravity.yaw), len(frames))
        for frame in frames:
            try:
                self._fuse(frame)
            except InvalidInput as error:  # validated when held; the map may still refuse it
                LOG.warning("held frame refused by the map: %s", error)
        return len(frames)

    def _check_contract(self) -> list[str]:
        """Check the completion model's contract against this map; ConfigError if they cannot work together."""
        contract = getattr(self.model, "contract", None)
        if contract is None:
            return []
        from ssr_ros.completion.contract import check_contract

        notes = check_contract(
            contract, self.config.map.voxel_size, self.config.map.truncation, self.taxonomy.names,
            self.config.completion.chunk_size, self.model.config.size_multiple,
        )
        for note in notes:
            LOG.info("completion: %s", note)
        return notes

    def _withhold_uncalibrated_model(self) -> str:
        """Drop a model whose calibration found no confidence at which its predicted surface is
        precise enough (threshold 1): running it would cost time and write nothing. Returns why."""
        contract = getattr(self.model, "contract", None)
        if contract is None or not contract.calibrated or self.config.completion.min_confidence > 0:
            return ""
        calibration = contract.calibration
        if calibration.min_confidence < 1.0:
            return ""
        reason = (f"the completion weights reach no {calibration.target_precision:.0%} precision of predicted "
                  f"surface on held-out rooms ({calibration.fitted_on}); the network does not run, the room "
                  "layout and the objects still do where they are on (set completion.min_confidence to run it anyway)")
        LOG.warning("completion withheld: %s", reason)
        self.model = None
        return reason

    def _threads(self):
        """The map's thread setting (``map.threads``) for the enclosed map work."""
        return cpu_threads(self.device, self.config.map.threads)

    @property
    def completion_enabled(self) -> bool:
        """Whether anything fills in unobserved space: the network, the room layout, or both."""
        return self.model is not None or self.config.layout.enabled

    # ------------------------------------------------------------------ fusion
    def integrate(self, frame: Frame) -> dict[str, int]:
        """Fuse one frame (pose in the poses' frame); InvalidFrame / InvalidPose leave the map untouched.

        While the gravity alignment is being estimated the frame is validated and held
        (``{"held": 1}``); the frame that completes ``gravity.estimate_frames`` fuses them all.
        In ``input_mode: rgb`` the frame's depth is first predicted from its color (outside the
        lock); a frame that is not a key frame is not fused (``{"not_key_frame": 1}``).
        """
        start = time.perf_counter()
        if self.mono is not None:
            predicted = self.mono(frame)
            if predicted is None:
                return {"not_key_frame": 1}
            frame = predicted
        self._check_depth_range(frame)
        with self.lock:
            if self.gravity is None:
                frame.validate()
                self._held_frames.append(frame)
                result = {"held": 1}
                if len(self._held_frames) >= self.config.gravity.estimate_frames:
                    self._settle_gravity()  # timed with this call
            else:
                result = self._fuse(frame)
        self.timers["integrate"].add(time.perf_counter() - start)
        return result

    def _check_depth_range(self, frame: Frame) -> None:
        """DepthOutOfRange when no depth pixel lies in [min_depth, max_depth]: such a frame
        would change nothing, and must be dropped and counted rather than counted as fused."""
        depth = np.asarray(frame.depth)
        config = self.config.map
        if depth.ndim != 2 or np.any((depth >= config.min_depth) & (depth <= config.max_depth)):
            return
        valid = depth[np.isfinite(depth) & (depth > 0)]
        if valid.size:  # no valid pixel at all: Frame.validate says so
            raise DepthOutOfRange(f"depth has no pixel within [{config.min_depth}, {config.max_depth}] m "
                                  f"(its valid pixels span {valid.min():.3f}..{valid.max():.3f} m)")

    def _fuse(self, frame: Frame) -> dict[str, int]:
        """Integrate ``frame`` into the map with its pose in the aligned frame (under the lock)."""
        if not self.gravity.is_identity:
            T = np.asarray(frame.T_world_cam, dtype=np.float64)
            frame = dataclasses.replace(frame, T_world_cam=self.gravity.T_aligned_world @ T)
        has_semantics = frame.labels is not None or frame.label_probs is not None
        structural = not has_semantics and self._structural_labels_apply()
        if structural:
            labels, confidence = self.structure.label(frame.depth, frame.intrinsics, frame.T_world_cam)
            frame = dataclasses.replace(frame, labels=labels, label_confidence=confidence)
        result = self.map.integrate(frame)
        self.frames_with_semantics += has_semantics
        self.frames_structural += structural
        self.frames_integrated += 1
        self.last_camera_position = np.asarray(frame.T_world_cam, dtype=np.float64)[:3, 3].copy()
        self._camera_path.append(self.last_camera_position)
        if len(self._camera_path) > CAMERA_PATH_LIMIT:  # keep every other: the whole run, coarser
            self._camera_path = self._camera_path[::2]
        self._camera_up.add(frame.T_world_cam)
        self.last_stamp_ns = frame.stamp_ns
        return result

    # ------------------------------------------------------------------ completion
    def _collect_changes(self) -> None:
        """Feed blocks changed since the last look to the scheduler (call under the lock)."""
        changed = self.map.changed_blocks(self._seen_counter)
        self._seen_counter = self.map.update_counter
        self.scheduler.mark_changed(changed.cpu().numpy())

    def complete(self, camera_position: np.ndarray | None = None, everything: bool = False) -> int:
        """Fill in unobserved space: the network on the chunks the scheduler picks, then the room
        layout (:mod:`ssr_ros.completion.layout`) where frames came in since it last ran. Returns how
        many chunks the network completed.

        ``camera_position`` defaults to the last integrated frame's; ``everything`` completes
        every dirty chunk regardless of distance and per-run limit (offline reconstruction).
        """
        chunks = self._complete_chunks(camera_position, everything) if self.model is not None else 0
        self.complete_layout(everything)
        return chunks

    def pending_chunk_origins(self) -> list[tuple[int, int, int]]:
        """First voxels of every chunk with changes not yet completed: what ``complete(everything=True)``
        would complete now, on the scheduler's chunk grid (nothing is cleared)."""
        with self.lock:
            self._collect_changes()
            return [self.scheduler.chunk_origin(cell) for cell in self.scheduler.pending]

    def _complete_chunks(self, camera_position: np.ndarray | None, everything: bool) -> int:
        with self.lock:
            position = self.last_camera_position if camera_position is None else camera_position
            if everything:
                origins = self.pending_chunk_origins()
                self.scheduler.clear()
            else:
                self._collect_changes()
                origins = self.scheduler.select(position, self.map.voxel_size)
        if not origins:
            return 0
        start = time.perf_counter()
        # All scheduled chunks in one call: batched through the network, overlaps blended.
        complete_chunks(self.model, _LockedChunkAccess(self), origins, self.config.completion)
        self.chunks_completed += len(origins)
        self.timers["complete"].add(time.perf_counter() - start)
        return len(origins)

    def complete_layout(self, everything: bool = True):
        """Write the room's unseen floor, walls and ceiling (``layout``) if frames were fused since
        the last run (and, unless ``everything``, ``layout.period_s`` has passed); returns the :class:`~ssr_ros.completion.layout.LayoutReport` (None when off
        or nothing new)."""
        if not self.config.layout.enabled or self.frames_integrated == self._layout_frames:
            return None
        if not everything and time.monotonic() - self._layout_time < self.config.layout.period_s:
            return None
        start = time.perf_counter()
        with self.lock:
            self._layout_frames = self.frames_integrated
            self._layout_time = time.monotonic()
            camera_path = self.camera_path
        # the map is read and written under the lock, the planes are found without it
        with self._threads():
            previous = self.layout_report.voxels if self.layout_report is not None else None
            report = complete_layout(_LockedChunkAccess(self), self.config.layout, camera_path,
                                     self.structural_class_ids(), previous, self.config.planning.floor_height)
        self.layout_report = report
        self.timers["layout"].add(time.perf_counter() - start)
        return report

    def structural_class_ids(self) -> dict[str, int]:
        """Taxonomy ids of the room layout's classes (floor, wall, ceiling, door, window, picture: those the
        taxonomy has)."""
        return {name: self.taxonomy.id_of(name) for name in LAYOUT_CLASSES if name in self.taxonomy.names}

    # ------------------------------------------------------------------ regularisation
    def _build_regularizer(self):
        from ssr_ros.regularization.labels import RegularizedLabels
        from ssr_ros.regularization.stage import build_regularizer

        config = self.config.regularization
        regularizer = build_regularizer(config, self.taxonomy.names, self.config.map.voxel_size,
                                        self.config.map.truncation, self.device)
        return regularizer, RegularizedLabels(self.device)

    def regularize(self):
        """Run the regularisation stage over every chunk of the map (after completion); returns its
        :class:`~ssr_ros.regularization.stage.RegularizationReport`. Labels go to :attr:`regularized`
        (observed and inferred, flagged) and to the predicted layer; nothing measured changes."""
        from ssr_ros.regularization.stage import regularize_map

        with self.lock:
            blocks = self.map.allocated_block_coords().cpu()
        report = regularize_map(self.regularizer, _LockedChunkAccess(self), blocks, self.map.block_size,
                                self.config.regularization, self.regularized, self.taxonomy.num_classes)
        if report.chunks:
            self.timers["regularize"].add(report.seconds)
        return report

    # ------------------------------------------------------------------ outputs
    def mesh_update(self) -> MeshUpdate:
        """Meshes of the blocks changed since the previous call, and the blocks that vanished."""
        start = time.perf_counter()
        with self._mesh_lock, self._threads():
            with self.lock:
                tsdf_map = self.map
                snapshot = tsdf_map.prepare_mesh_update()
            update = tsdf_map.finish_mesh_update(snapshot)  # without the map lock: integration goes on
        self.timers["mesh"].add(time.perf_counter() - start)
        return update

    def pose_frame_mesh(self, include_predicted: bool = True) -> BlockMesh:
        """The full mesh in the frame of the incoming poses (turned back from the gravity-aligned
        map frame where they differ), as saved and as ground truth in that frame expects."""
        with self._mesh_lock, self.lock, self._threads():
            mesh = self.map.mesh(include_predicted)
            T_world_map = self.T_world_map
        if T_world_map is None:
            return mesh
        return dataclasses.replace(mesh, vertices=transform_points(T_world_map, mesh.vertices))

    def full_mesh(self) -> BlockMesh:
        with self._mesh_lock, self.lock, self._threads():
            return self.map.mesh()

    def block_meshes(self) -> list[BlockMesh]:
        """The current mesh of every block (after bringing it up to date; the changed blocks are
        copied under the map's lock and meshed without it, as in :meth:`mesh_update`)."""
        with self._mesh_lock, self._threads():
            with self.lock:
                tsdf_map = self.map
                snapshot = tsdf_map.prepare_mesh_update()
            tsdf_map.finish_mesh_update(snapshot)
            return tsdf_map.block_meshes()

    @property
    def block_extent(self) -> float:
        """Edge length of a map block, metres."""
        return self.map.voxel_size * self.map.block_size

    def surface_voxels(self) -> dict[str, np.ndarray]:
        """Occupied voxels with color, label, confidence, observed/predicted flags."""
        with self.lock, self._threads():
            return select_voxels(self.map.layer, "surface")

    def voxel_blocks(self, block_coords=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Dense per-block voxel layers (all blocks, or the given ones)."""
        with self.lock, self._threads():
            return block_layers(self.map.layer, block_coords)

    def voxel_outputs(self, surface: bool = True, blocks: bool = True):
        """:meth:`surface_voxels` and :meth:`voxel_blocks` of one moment, computed from a copy of the
        voxels taken under the lock (a memory copy), so integration is not held up for the seconds
        a large map's exports take. Returns (voxels, (coords, layers)); an output not asked for
        (``surface`` / ``blocks`` False) is None."""
        with self.lock, self._threads():
            layer = self.map.layer.snapshot()
        with self._threads():
            decoded = flat_layers(layer) if surface and blocks else None  # decoded once for both
            return ((select_voxels(layer, "surface", decoded) if surface else None),
                    (block_layers(layer, layers=decoded) if blocks else None))

    def voxel_blocks_in_region(self, lo, hi) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Dense per-block voxel layers of the blocks intersecting the box [lo, hi] (metres, map
        frame), read from memory and from the block store where blocks were evicted."""
        with self.lock, self._threads():
            return block_layers(self.map.region_layer(lo, hi))

    def occupancy(self, include_predicted: bool | None = None) -> OccupancyGrid2D:
        """2D occupancy of the ``planning`` height band above the floor: measured voxels only,
        unless ``include_predicted`` (default: ``planning.include_predicted``)."""
        config = self.config.planning
        if include_predicted is not None:
            config = dataclasses.replace(config, include_predicted=include_predicted)
        return self.planning_outputs(with_3d=False, config=config, wanted=("occupancy",)).occupancy

    def planning_outputs(self, with_3d: bool = True, config: PlanningConfig | None = None,
                         wanted: Collection[str] | None = None) -> PlanningOutputs:
        """Floor, tiered 2D grids and distance fields for planners (:mod:`ssr_ros.planning`), in the
        map's gravity-aligned frame. The map lock is held only while its voxels are copied (reading
        them all took over a second of a 78 MB map, time in which no frame could be fused).
        ``wanted``: the outputs to compute (see :func:`ssr_ros.planning.outputs.outputs_of_volume`;
        None: all, the 3D fields where ``with_3d``)."""
        start = time.perf_counter()
        with self.lock, self._threads():
            layer = self.map.layer.snapshot()  # a memory copy: the voxels are read without the lock
        with self._threads():
            outputs = outputs_of_volume(planning_volume(layer), config or self.config.planning, with_3d=with_3d,
                                        wanted=wanted)
        self.timers["planning"].add(time.perf_counter() - start)
        return outputs

    def save(self, directory: str | Path, formats: list[str] | tuple[str, ...] = ()) -> list[Path]:
        """Write the requested ``SAVE_FORMATS`` (all when empty) into ``directory``; returns the files.

        Frames: the map file, the Nav2 grids and the distance fields are in the map's
        (gravity-aligned) frame; the meshes and the voxel PLY are turned back into the poses' frame, so they overlay the recording. Frames still
        held for the gravity estimate are fused first (:meth:`settle_gravity`). Each file is
        written atomically; MapFileError names what could not be written.
        """
        formats = list(formats) or list(SAVE_FORMATS)
        unknown = [f for f in formats if f not in SAVE_FORMATS]
        if unknown:
            raise ConfigError(f"unknown save format(s) {unknown}; expected any of {list(SAVE_FORMATS)}")
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise MapFileError(f"cannot create output directory '{directory}': {error.strerror}") from error
        start = time.perf_counter()
        written = []
        with self._mesh_lock, self.lock:
            self.settle_gravity()
            T_world_map = self.T_world_map
            mesh = self.pose_frame_mesh() if {"mesh", "mesh_semantic"} & set(formats) else None
            planning = None
            if {"nav2", "esdf"} & set(formats):
                planning_start = time.perf_counter()
                planning = planning_outputs(self.map, self.config.planning, with_3d="esdf" in formats)
                self.timers["planning"].add(time.perf_counter() - planning_start)
                self.planning_summary = planning.summary()
            for fmt in formats:
                if fmt == "nav2":
                    written += [p.resolve() for p in write_nav2_maps(planning, directory)]
                    continue
                if fmt == "esdf":
                    written.append(write_esdf(planning, directory / ESDF_FILE).resolve())
                    continue
                if fmt == "map":
                    path = directory / MAP_FILE
                    self.map.save(path)
                    if len(self.regularized):
                        from ssr_ros.regularization.labels import REGULARIZED_FILE

                        written.append(self.regularized.save(directory / REGULARIZED_FILE).resolve())
                elif fmt == "mesh":
                    path = directory / "mesh.ply"
                    export_mesh_ply(path, mesh, self.taxonomy, color_by="rgb")
                elif fmt == "mesh_semantic":
                    path = directory / "mesh_semantic.ply"
                    export_mesh_ply(path, mesh, self.taxonomy, color_by="label")
                else:
                    path = directory / "voxels.ply"
                    export_voxels_ply(path, self.map.layer, which="surface", taxonomy=self.taxonomy, transform=T_world_map)
                written.append(path.resolve())
        self.timers["save"].add(time.perf_counter() - start)
        return written

    def load(self, path: str | Path) -> None:
        """Replace the map by a saved one (a map file or a directory holding map.ssrmap).

        The current map is kept when loading fails (MapFileError). Voxel size, block size and
        class count come from the file.
        """
        storage = {name: getattr(self.config.map, name)
                   for name in ("memory_budget_mb", "clear_radius_m", "block_store_dir")}
        loaded = read_map(path, self.device, self.taxonomy, overrides=storage)
        with self._mesh_lock, self.lock:
            self.map.close()
            self.map = loaded
            self.regularized = type(self.regularized)(self.device)
            self.scheduler.clear()
            self._seen_counter = 0
            self.frames_integrated = loaded.frames_integrated
            self.layout_report = None  # the loaded map's predictions are not this run's layout

    def load_shape_prior(self):
        """The shape prior of the objects stage (``objects.weights``, default the packaged one), or
        None with ``objects.type: none`` (instances listed only); a bad file is refused here."""
        from ssr_ros.objects.refinement import configured_prior

        return configured_prior(self.config.objects)

    def refine_objects(self, prior):
        """One object refinement pass (:func:`ssr_ros.objects.refinement.refine_objects`) over the
        whole map: the map is copied under the lock, instances are found and fitted without it
        (integration goes on), and the completed objects are written under it. Returns the
        ``RefinementResult``. Where frames were labelled by the structural labeller (no 2D
        semantics), its catch-all class (``structure.others``) names no kind of object: its
        instances are listed, not completed."""
        from ssr_ros.objects.instances import map_region
        from ssr_ros.objects.refinement import refine_objects

        start = time.perf_counter()
        with self.lock:
            region = map_region(self.map, self.config.objects.instances)
            camera_path = self.camera_path if len(self._camera_path) else None
            catch_all = (self.config.structure.others,) if self.frames_structural else ()
        result = refine_objects(_LockedWrites(self), self.taxonomy.names, prior, self.config.objects, region=region,
                                camera_path=camera_path, list_only_classes=catch_all,
                                floor_height=self.config.planning.floor_height)
        self.timers["objects"].add(time.perf_counter() - start)
        return result

    def reset(self) -> int:
        """Clear the map; returns how many blocks were dropped."""
        with self._mesh_lock, self.lock:
            dropped = self.map.num_blocks
            self.map.reset()
            self.regularized = type(self.regularized)(self.device)
            self._held_frames.clear()
            self.scheduler.clear()
            if self.structure is not None:
                self.structure.reset()
            if self.mono is not None:
                self.mono.reset()
            self._seen_counter = self.map.update_counter
            self.last_stamp_ns = None
            self._camera_path = []
            self.layout_report = None
            return dropped

    def close(self) -> None:
        """Delete the map's on-disk block store (a temporary one with its directory)."""
        with self.lock:
            self.map.close()

    def _model_bytes(self) -> int:
        """Bytes of the completion model's parameters and buffers (0 without one)."""
        if not isinstance(self.model, torch.nn.Module):
            return 0
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return int(sum(t.numel() * t.element_size() for t in tensors))

    def stats(self) -> dict[str, Any]:
        """Map and pipeline counters. ``outputs_cover`` says what the mesh, voxel map and occupancy
        show: ``"whole map"``, or ``"blocks in memory"`` while blocks are evicted to disk."""
        with self.lock:
            tsdf_map = self.map
            prepared = tsdf_map.prepare_stats()
        stats = tsdf_map.finish_stats(prepared)  # counting every voxel without the lock: fusion goes on
        stats["outputs_cover"] = "blocks in memory" if stats.get("blocks_on_disk", 0) else "whole map"
        stats.update(
            frames_integrated=self.frames_integrated,
            chunks_completed=self.chunks_completed,
            completion_model_bytes=self._model_bytes(),
            completion_enabled=self.completion_enabled,
            completion_withheld=self.completion_withheld,
            # chunks waiting for the network; without one (off or withheld) nothing waits
            pending_chunks=len(self.scheduler.pending) if self.model is not None else 0,
            gravity_held_frames=len(self._held_frames),
            **({"mono": self.mono.summary()} if self.mono is not None else {}),
            semantic_source=self.semantic_source,
            frames_structural_labels=self.frames_structural,
            structure=self.structure.summary() if self.structure is not None and self.frames_structural else None,
            timings={name: {"count": t.count, "mean_s": t.mean_s, "last_s": t.last_s, "total_s": t.total_s}
                     for name, t in self.timers.items()},
        )
        return stats


class _LockedWrites:
    """The map's ``write_predictions`` under the pipeline's lock (what object refinement writes)."""

    def __init__(self, pipeline: "MappingPipeline") -> None:
        self._pipeline = pipeline

    def write_predictions(self, *args, **kwargs):
        with self._pipeline.lock:
            return self._pipeline.map.write_predictions(*args, **kwargs)

