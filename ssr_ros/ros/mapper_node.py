"""The ``mapper`` node: RGB-D (+ labels) and poses in; semantic meshes, voxels and maps out.

A thin shell around :class:`ssr_ros.pipeline.MappingPipeline`:

- inputs (sensor-data QoS): color, depth, camera_info, optional label image; synchronised
  by stamp (message_filters' ApproximateTimeSynchronizer where installed, the tested
  equivalent ``ApproximateTimeSync`` otherwise); the camera pose from TF (tf2_ros, where
  installed) or from a pose topic (PoseStamped, PoseWithCovarianceStamped, TransformStamped or
  Odometry) of the camera or of a body frame (its child_frame_id / ``pose_child_frame``), whose
  transform to the camera comes from TF, ``/tf_static`` or ``camera_in_pose_frame``
  (:class:`ssr_ros.geometry.transform_tree.CameraPoseResolver`); a pose in another frame than
  ``map_frame`` is brought into it when that transform is known, else refused and counted
  (``poses_refused.TransformUnavailable``); these subscriptions are taken on a second node of
  the process, ``<name>_inputs``, by an executor of their own (:mod:`ssr_ros.ros.input_spinner`);
- ``input_mode: rgb`` (monocular, :mod:`ssr_ros.mono`): no depth subscription; on key frames
  depth, its confidence and class probabilities are predicted from color and fused with
  confidence-dependent weights (non-key frames are counted as ``frames_not_key``);
- a worker thread integrates frames; another runs completion every ``scheduler.period_s``
  on the dirtiest chunks near the camera, never blocking integration;
- outputs (transient-local, so a late RViz still sees them): ``~/mesh`` (ssr_ros/SemanticMesh,
  incremental), ``~/mesh_markers`` (MarkerArray, RGB or class colors), ``~/voxels``
  (PointCloud2 with label/confidence/observed), ``~/voxel_map`` (ssr_ros/SemanticVoxelMap),
  planner tiers (:mod:`ssr_ros.planning`): ``~/occupancy`` (nav_msgs/OccupancyGrid, measured
  obstacles of the height band above the estimated floor), ``~/occupancy_predicted`` (with
  predicted obstacles as their confidence), ``~/esdf_slice`` / ``~/esdf_slice_predicted`` (2D
  signed distance, PointCloud2) and, with ``publish_esdf_3d``, ``~/esdf`` / ``~/esdf_predicted``;
  ``~/integrated`` (std_msgs/Header of each frame once it is in the map), ``/diagnostics``
  (counts, timings, the floor height);
- frames: with ``gravity.mode: z_up`` (default) everything is in ``map_frame``. With
  ``estimate`` / ``fixed`` the map lives in a gravity-aligned frame (the first
  ``gravity.estimate_frames`` frames are held until it is estimated); ``~/voxels`` and
  ``~/mesh_markers`` are turned back into ``map_frame``, while the outputs tied to the voxel
  grid (``~/mesh`` blocks, ``~/voxel_map``, ``~/occupancy``) stay in the aligned frame and carry
  ``<map_frame>_gravity_aligned`` as frame_id; saved meshes / voxel PLYs are in ``map_frame``,
  the map file in the aligned frame;
- services: ``~/save_map``, ``~/load_map``, ``~/reset_map``, and ``~/complete`` (std_srvs/Trigger:
  complete every changed chunk now, whatever the distance, e.g. before saving).

Frames that cannot be used (bad encoding, size mismatch, no camera_info, no pose, two
different poses for one stamp, stamps going backwards, invalid or out-of-range depth) are
dropped, counted by reason and logged throttled; the node keeps running and the map is
unchanged by them. A stamp more than ``time_jump_threshold_s`` before the last integrated one
is a clock jump (bag loop, simulator restart), not a late frame: the buffers of the old
timeline are cleared, the jump is counted (``time_jumps``), and mapping goes on (with the map
cleared first when ``on_time_jump`` is ``reset``).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, TransformStamped
from nav_msgs.msg import Odometry
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from ssr_ros.config import DEPRECATED_PARAMETERS, rename_deprecated
from ssr_ros.errors import ConfigError, InvalidPose, PoseConflict, PoseUnavailable, SsrError, TransformUnavailable
from ssr_ros.frame_order import FrameOrder, StampVerdict
from ssr_ros.geometry import transform_points
from ssr_ros.geometry.trajectory import PoseBuffer
from ssr_ros.geometry.transform_tree import CameraPoseResolver, StaticTransforms
from ssr_ros.msg import SemanticMesh, SemanticVoxelMap
from ssr_ros.pipeline import MappingPipeline, PipelineConfig
from ssr_ros.process_memory import limit_malloc_arenas, process_memory, release_free_heap
from ssr_ros.ros.conversions.distance_cloud import field_to_msg
from ssr_ros.ros.conversions.marker import block_part_records, control_record, part_count
from ssr_ros.ros.conversions.marker_cdr import (
    MarkerRecord, cdr_layout_matches, marker_array_cdr, records_to_msg, split_marker_records,
)
from ssr_ros.ros.conversions.occupancy import occupancy_to_msg
from ssr_ros.ros.conversions.point_cloud import semantic_cloud_to_msg
from ssr_ros.ros.conversions.pose import (
    odometry_to_matrix,
    pose_stamped_to_matrix,
    pose_with_covariance_stamped_to_matrix,
    transform_stamped_to_matrix,
)
from ssr_ros.ros.conversions.semantic_map import boxes_to_map_msg
from ssr_ros.ros.conversions.semantic_map_cdr import voxel_map_cdr
from ssr_ros.ros.conversions.semantic_mesh_cdr import mesh_update_cdr
from ssr_ros.ros.conversions.time import stamp_to_ns
from ssr_ros.ros.frame_assembly import FrameAssembler
from ssr_ros.ros.input_spinner import InputSpinner
from ssr_ros.ros.log_throttle import LogThrottle
from ssr_ros.ros.map_outputs import voxel_blocks_to_boxes
from ssr_ros.ros.node_config import NodeConfig
from ssr_ros.ros.parameters import declare_config, read_config
from ssr_ros.ros.time_sync import ApproximateTimeSync
from ssr_ros.srv import GetVoxelRegion, LoadMap, ResetMap, SaveMap


LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# RViz's mesh: an update can be several arrays (``marker_message_mb``). A reliable keep-last writer
# drops what a slow reader has not acknowledged beyond its depth, so the history holds 16 of them
# (16 x 4 MB: a full array of the 78 MB test map is ~14 parts); it also keeps them in memory.
MARKERS_LATCHED = QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
POSE_TYPES = {"PoseStamped": (PoseStamped, pose_stamped_to_matrix),
              "PoseWithCovarianceStamped": (PoseWithCovarianceStamped, pose_with_covariance_stamped_to_matrix),
              "TransformStamped": (TransformStamped, transform_stamped_to_matrix),
              "Odometry": (Odometry, odometry_to_matrix)}


def _tf2():
    try:
        import tf2_ros

        return tf2_ros
    except ImportError:
        return None


def _matched_callbacks(callback):
    """Publisher event callbacks calling ``callback(QoSPublisherMatchedInfo)`` when a subscription
    matches or leaves; None where this rclpy has no matched event (then every full mesh
    publication rebuilds the markers, as if a subscriber had just joined)."""
    try:
        from rclpy.event_handler import PublisherEventCallbacks

        return PublisherEventCallbacks(matched=callback)
    except (ImportError, TypeError):
        return None


def set_process_cpu_threads(count: int) -> int | None:
    """Set torch's CPU threads per operation for the whole process to ``count`` (``map.threads``;
    0: leave torch's setting); returns the count set, or None.

    The node's threads (integration, outputs, completion, the executor's) share torch's CPU
    thread pool. Switching it per call (what the map does in a process of its own) races between
    threads, and every thread that did not switch it ran with one thread per core: on a busy
    2-core machine each small tensor operation then waits for a worker that is not scheduled
    (diagnostics and mesh preparation took 0.2-1.3 s instead of milliseconds, holding the map's
    lock). Set once, before the node's threads start, it holds for all of them.
    """
    if count <= 0:
        return None
    import torch

    torch.set_num_threads(count)
    return count


def lower_thread_priority(niceness: int) -> bool:
    """Give the calling thread ``niceness`` (Linux: a thread's niceness is its own, set through its
    native id); returns whether it was set. Used for the completion thread: with the cores busy, the
    kernel then runs integration first, and completion, which only fills in what the camera has not
    seen, takes the time left over."""
    if niceness <= 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return False
    try:
        thread_id = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread_id, max(os.getpriority(os.PRIO_PROCESS, thread_id), niceness))
    except OSError:
        return False
    return True


class MapperNode(Node):
    def __init__(self, own_process: bool = False, **kwargs) -> None:
        """``own_process``: the node is the process (``main``): torch's CPU thread count is set for
        the whole process to ``map.threads`` (see :func:`set_process_cpu_threads`)."""
        super().__init__("ssr_mapper", **kwargs)
        declare_config(self, NodeConfig)
        declare_config(self, PipelineConfig)
        self._apply_deprecated_parameters()
        self.settings: NodeConfig = read_config(self, NodeConfig)
        pipeline_config = read_config(self, PipelineConfig)
        threads = set_process_cpu_threads(pipeline_config.map.threads) if own_process else None
        self.own_process = own_process
        if own_process and _ARENA_LIMIT["applied"] != self.settings.malloc_arena_max and "MALLOC_ARENA_MAX" not in os.environ:
            self.get_logger().warning(
                f"malloc_arena_max={self.settings.malloc_arena_max} comes too late from a parameters file (ROS's threads "
                f"run with {_ARENA_LIMIT['applied']}); give it on the command line (-p malloc_arena_max:=N) or set "
                "MALLOC_ARENA_MAX")
        self.heap_releases = 0
        self.heap_release_s = 0.0
        self.pipeline = MappingPipeline(pipeline_config)
        self.counters: Counter[str] = Counter()
        self.last_floor = None  # of the last planner outputs
        self._counters_lock = threading.Lock()
        self.order = FrameOrder(self.settings.time_jump_threshold_s)
        self._log_throttle = LogThrottle(self.settings.warn_throttle_s)
        self._running = True
        s = self.settings
        log = self.get_logger()
        # Inputs never wait behind a slow publication or service call: they are taken on a node and
        # executor of their own (ssr_ros.ros.input_spinner: a wait set of the inputs alone, not of
        # every timer, service and publisher event of this node); outputs and services have their
        # own callback groups on this node's executor.
        self._inputs = InputSpinner(self)
        try:  # a node that fails to start leaves no inputs node behind
            self._output_group = MutuallyExclusiveCallbackGroup()
            self._service_group = MutuallyExclusiveCallbackGroup()

            # --- pose
            tf2 = _tf2()
            self._tf_buffer = None
            source = s.pose_source if s.pose_source != "auto" else ("tf" if tf2 else "topic")
            if source == "tf" and tf2 is None:
                raise SsrError("pose_source 'tf' needs tf2_ros, which is not installed; use pose_source 'topic'")
            self.pose_source = source
            self.poses = PoseBuffer(s.pose_max_gap_s, s.pose_tolerance_s, jump_threshold_s=s.time_jump_threshold_s)
            self.static_transforms = StaticTransforms()
            if tf2 is not None:
                self._tf_buffer = tf2.Buffer()
                self._tf_listener = tf2.TransformListener(self._tf_buffer, self)
            else:
                self._subscribe_tf_static()
            self.resolver = CameraPoseResolver(s.map_frame, self._fixed_transform, s.explicit_camera_extrinsic())
            self._posed_frame = s.pose_child_frame
            if source == "tf":
                lookup = self._lookup_tf
            else:
                msg_type, self._pose_to_matrix = POSE_TYPES[s.pose_type]
                self._inputs.subscribe(msg_type, s.topics.pose, self._on_pose, QoSProfile(depth=100))
                lookup = self._lookup_pose_topic
            self.segmenter = self._make_segmenter()
            self.assembler = FrameAssembler(lookup, s.depth_scale, s.ignore_distortion,
                                            self.pipeline.taxonomy.num_classes, s.probabilities_layout)

            # --- sensors
            sensor_qos = qos_profile_sensor_data if s.sensor_qos == "sensor_data" else QoSProfile(depth=s.sync_queue_size)
            self._inputs.subscribe(CameraInfo, s.topics.camera_info, self._on_camera_info, sensor_qos)
            monocular = self.pipeline.config.input_mode == "rgb"
            if monocular and not s.topics.color:
                raise ConfigError("input_mode 'rgb' predicts depth from color: set topics.color")
            inputs = [] if monocular else [("depth", s.topics.depth)]  # rgb mode: no depth subscription
            if s.topics.color:
                inputs.append(("color", s.topics.color))
            if self.segmenter is not None:
                pass  # the segmenter stage labels the color images: no 2D semantics topics
            elif s.topics.label_probabilities:
                inputs.append(("probabilities", s.topics.label_probabilities))
            elif s.topics.labels:
                inputs.append(("labels", s.topics.labels))
                if s.topics.label_confidence:
                    inputs.append(("confidence", s.topics.label_confidence))
            if s.topics.instances:
                inputs.append(("instances", s.topics.instances))
            # structural labels (pipeline.structure) only where no semantic source is configured or
            # publishing (set per frame in _on_images / _on_geometry)
            self.pipeline.semantic_source_expected = (self.segmenter is not None
                                                      or any(name in ("labels", "probabilities") for name, _ in inputs)
                                                      or (monocular and self.pipeline.config.mono.semantics))
            self._input_names = [name for name, _ in inputs]
            self._geometry_names = [name for name in self._input_names if name in ("depth", "color")]
            self._semantic_topics = [topic for name, topic in inputs if name not in ("depth", "color")]
            self._frames: queue.Queue = queue.Queue(maxsize=s.frame_queue_size)
            self._setup_sync(inputs, sensor_qos)

            # --- outputs
            self.mesh_pub = self.create_publisher(SemanticMesh, "~/mesh", LATCHED)
            self._marker_subscribers_seen = 0  # marker subscriptions matched so far (cumulative)
            self._marker_full_for: int | None = None  # ... when the last full marker array went out
            marker_events = _matched_callbacks(self._on_marker_matched)
            self._marker_matches_known = marker_events is not None
            self.marker_pub = self.create_publisher(MarkerArray, "~/mesh_markers", MARKERS_LATCHED, event_callbacks=marker_events)
            self._marker_cdr = cdr_layout_matches()  # serialised from arrays; generated messages on another layout
            if not self._marker_cdr:
                self.get_logger().warning("visualization_msgs/Marker of this ROS distribution differs from the layout "
                                          "ssr_ros serialises; RViz markers are built as generated messages (slower)")
            self.voxel_pub = self.create_publisher(PointCloud2, "~/voxels", LATCHED)
            self.voxel_map_pub = self.create_publisher(SemanticVoxelMap, "~/voxel_map", LATCHED)
            from nav_msgs.msg import OccupancyGrid

            self.occupancy_pub = self.create_publisher(OccupancyGrid, "~/occupancy", LATCHED)
            self.cost_pub = self.create_publisher(OccupancyGrid, "~/occupancy_predicted", LATCHED)
            self.esdf_slice_pubs = {kind: self.create_publisher(PointCloud2, f"~/esdf_slice{kind}", LATCHED)
                                    for kind in ("", "_predicted")}
            self.esdf_pubs = ({kind: self.create_publisher(PointCloud2, f"~/esdf{kind}", LATCHED) for kind in ("", "_predicted")}
                              if s.publish_esdf_3d else {})
            self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self.integrated_pub = self.create_publisher(Header, "~/integrated", 10)
            self.create_timer(s.mesh_period_s, self.publish_mesh_update, callback_group=self._output_group)
            self.create_timer(s.full_mesh_period_s, lambda: self.publish_mesh_update(full=True), callback_group=self._output_group)
            self.create_timer(s.voxel_period_s, self.publish_voxels, callback_group=self._output_group)
            self.create_timer(1.0, self.publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup())
            if own_process and s.heap_release_period_s > 0:
                self.create_timer(s.heap_release_period_s, self.release_heap, callback_group=MutuallyExclusiveCallbackGroup())
            for service_type, name, handler in [(SaveMap, "~/save_map", self._on_save), (LoadMap, "~/load_map", self._on_load),
                                                (ResetMap, "~/reset_map", self._on_reset), (Trigger, "~/complete", self._on_complete),
                                                (GetVoxelRegion, "~/get_voxel_region", self._on_region)]:
                self.create_service(service_type, name, handler, callback_group=self._service_group)
            self._mesh_publication = threading.Lock()
            self._marker_ids: dict[tuple[int, int, int], list[int]] = {}  # map block -> its RViz marker ids
            self._next_marker_id = 0

            # --- workers
            self._integrator = threading.Thread(target=self._integration_loop, name="ssr_integration", daemon=True)
            self._integrator.start()
            self._completer = threading.Thread(target=self._completion_loop, name="ssr_completion", daemon=True)
            self._completer.start()
            self._object_stage = None
            if self.pipeline.config.objects.period_s > 0:
                self._start_object_stage()
            self._inputs.start()
        except BaseException:
            self._inputs.close()
            raise
        log.info(
            f"mapping on {self.pipeline.device} (voxel {self.pipeline.map.voxel_size:.3f} m, "
            f"completion {'on' if self.pipeline.completion_enabled else 'off'}), pose from {source}, "
            f"inputs {', '.join(f'{n}={t}' for n, t in inputs)}"
            + (f", {threads} CPU thread(s) per tensor operation" if threads else "")
        )

    def _apply_deprecated_parameters(self) -> None:
        """Parameters given under an old name (``DEPRECATED_PARAMETERS``) set the new one, with a warning."""
        from rclpy.parameter import Parameter

        overrides = {name: p.value for name, p in getattr(self, "_parameter_overrides", {}).items()}
        renamed, warnings = rename_deprecated(overrides)
        for warning in warnings:
            self.get_logger().warning(warning)
        for old, (new, _) in DEPRECATED_PARAMETERS.items():
            if old in overrides and new not in overrides:
                value = renamed[new]
                if isinstance(self.get_parameter(new).value, float) and isinstance(value, int):
                    value = float(value)
                self.set_parameters([Parameter(new, value=value)])

    # ------------------------------------------------------------------ inputs
    def _setup_sync(self, inputs, qos) -> None:
        """Match the inputs by stamp. With 2D semantics configured, a second matcher of depth (and
        color) alone serves the time while no node publishes them (no segmenter running yet), so
        that the map is not frozen waiting for label images that never come."""
        s = self.settings
        geometry = len(self._geometry_names)
        try:
            import message_filters
        except ImportError:
            message_filters = None
        self._geometry_sync = None
        if message_filters is not None:
            subscribers = [message_filters.Subscriber(self._inputs.node, Image, self.resolve_topic_name(topic), qos_profile=qos)
                           for _, topic in inputs]
            self._sync = message_filters.ApproximateTimeSynchronizer(subscribers, s.sync_queue_size, s.sync_slop_s)
            self._sync.registerCallback(self._on_images)
            if self._semantic_topics:
                self._geometry_sync = message_filters.ApproximateTimeSynchronizer(
                    subscribers[:geometry], s.sync_queue_size, s.sync_slop_s)
                self._geometry_sync.registerCallback(self._on_geometry)
            return
        self._sync = ApproximateTimeSync(len(inputs), self._on_images, s.sync_queue_size, s.sync_slop_s)
        self._geometry_sync = (ApproximateTimeSync(geometry, self._on_geometry, s.sync_queue_size, s.sync_slop_s)
                               if self._semantic_topics else None)
        for index, (_, topic) in enumerate(inputs):
            self._inputs.subscribe(Image, topic, lambda msg, i=index: self._route(i, msg), qos)

    def _make_segmenter(self):
        """The segmenter stage (``segmenter.*``): a model labelling color frames in its own thread."""
        config = self.pipeline.config.segmenter
        if config.type == "none":
            return None
        if not self.settings.topics.color:
            raise ConfigError("segmenter.type needs color images: set topics.color")
        from ssr_ros.semantics.background import BackgroundSegmenter
        from ssr_ros.semantics.segmenter import Segmenter

        model = Segmenter(config, self.pipeline.taxonomy)  # a bad model file refuses to start here
        self.get_logger().info(f"segmenter: {config.type} model {config.model}, at most {config.rate_hz:g} frames/s "
                               "(the other frames integrate geometry and color only)")
        return BackgroundSegmenter(model, config.rate_hz)

    def _integrate_segmented(self) -> None:
        """Integrate the frames the segmenter has finished, with their class probabilities (a
        frame whose segmentation failed: with geometry and color only)."""
        for done in self.segmenter.finished():
            frame = done.frame
            if done.error is None:
                frame = dataclasses.replace(frame, labels=None, label_confidence=None, label_probs=done.probabilities)
                self._count("frames_segmented")
            else:
                self._count("segmenter_failed")
                self.get_logger().warning(f"segmenter failed on a frame (integrated without semantics): {done.error!r}",
                                          throttle_duration_sec=self.settings.warn_throttle_s)
            try:
                result = self.pipeline.integrate(frame)
            except SsrError as error:
                self._drop(type(error).__name__, str(error))
                continue
            if result.get("not_key_frame"):  # rgb mode
                self._count("frames_not_key")
                continue
            self._count("frames_integrated")
            self.integrated_pub.publish(done.context)

    def _semantics_published(self) -> bool:
        """Whether some node publishes the configured 2D semantics topics."""
        return all(self.count_publishers(topic) > 0 for topic in self._semantic_topics)

    def _route(self, index: int, msg: Image) -> None:
        """An image to the matcher of all inputs, or, for depth and color while nobody publishes
        the 2D semantics, to the matcher of depth and color alone (each image to one matcher, so
        that each unmatched one is counted once)."""
        stamp = stamp_to_ns(msg.header.stamp)
        if index < len(self._geometry_names) and self._geometry_sync is not None and not self._semantics_published():
            self._geometry_sync.add(index, stamp, msg)
        else:
            self._sync.add(index, stamp, msg)

    def _on_geometry(self, *images: Image) -> None:
        """Depth (and color) without 2D semantics: integrated while no node publishes them."""
        if self._semantics_published():
            return  # the matcher of all inputs takes this frame (message_filters feeds both)
        self._count("frames_without_semantics")
        self.pipeline.semantic_source_expected = False  # structural labels meanwhile
        self._enqueue(dict(zip(self._geometry_names, images)))

    def _subscribe_tf_static(self) -> None:
        """Without tf2_ros: keep the fixed transforms of ``/tf_static`` (where tf2_msgs is installed)."""
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            return
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._inputs.subscribe(TFMessage, "/tf_static", self.add_static_transforms, qos)

    def add_static_transforms(self, msg) -> None:
        """A tf2_msgs/TFMessage of fixed transforms (``/tf_static``)."""
        for transform in msg.transforms:
            try:
                T = transform_stamped_to_matrix(transform)
            except InvalidPose as error:
                self._refuse_pose("InvalidPose", f"/tf_static: {error}")
                continue
            self.static_transforms.add(transform.header.frame_id, transform.child_frame_id, T)

    def _fixed_transform(self, target: str, source: str) -> np.ndarray | None:
        """T_target_source from tf2 (latest) where installed, else from the fixed transforms received."""
        if self._tf_buffer is not None:
            from rclpy.time import Time

            try:
                return transform_stamped_to_matrix(self._tf_buffer.lookup_transform(target, source, Time()))
            except Exception:  # noqa: BLE001 - tf2 raises LookupException, ConnectivityException, ...
                return None
        return self.static_transforms.lookup(target, source)

    def _refuse_pose(self, reason: str, message: str) -> None:
        self._count(f"poses_refused.{reason}")
        if self._log_throttle.ready(("pose_refused", reason)):
            self.get_logger().warning(f"pose refused ({reason}): {message}")

    def _on_pose(self, msg) -> None:
        stamp_ns = stamp_to_ns(msg.header.stamp)
        try:
            T_map_posed = self.resolver.pose_in_map(self._pose_to_matrix(msg), msg.header.frame_id)
        except TransformUnavailable as error:
            self._refuse_pose("TransformUnavailable", str(error))
            return
        except InvalidPose as error:
            self._drop("InvalidPose", str(error))
            return
        child = getattr(msg, "child_frame_id", "")
        if child:
            self._posed_frame = child
        try:
            jumped = self.poses.add(stamp_ns, T_map_posed)
        except PoseConflict as error:
            self._count("poses_conflicting")
            if self._log_throttle.ready("pose_conflict"):
                self.get_logger().warning(f"pose refused: {error}")
            return
        except InvalidPose as error:
            self._drop("InvalidPose", str(error))
            return
        if jumped:
            self.get_logger().warning(f"pose stamps jumped back to {stamp_ns * 1e-9:.3f} s; forgot the older poses")

    def _lookup_pose_topic(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        """T_map_camera at ``stamp_ns``: the pose topic's (body) pose times the camera's extrinsic."""
        self.poses.wait_until_covered(stamp_ns - int(self.settings.pose_tolerance_s * 1e9), self.settings.pose_wait_s)
        T_map_posed = self.poses.lookup(stamp_ns)
        return T_map_posed @ self.resolver.camera_extrinsic(self._posed_frame, frame_id)

    def _lookup_tf(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            transform = self._tf_buffer.lookup_transform(
                self.settings.map_frame, frame_id, Time(nanoseconds=stamp_ns),
                timeout=Duration(nanoseconds=int(self.settings.tf_timeout_s * 1e9)),
            )
        except Exception as error:  # tf2 raises LookupException, ExtrapolationException, ...
            raise PoseUnavailable(f"no transform {self.settings.map_frame} <- {frame_id}: {error}") from error
        return transform_stamped_to_matrix(transform)

    def _on_images(self, *images: Image) -> None:
        if any(name in ("labels", "probabilities") for name in self._input_names):
            self.pipeline.semantic_source_expected = True
        self._enqueue(dict(zip(self._input_names, images)))

    def _enqueue(self, by_name: dict) -> None:
        self._count("frames_received")
        while True:  # several input threads may race for the last free place
            try:
                self._frames.put_nowait(by_name)
                return
            except queue.Full:
                try:
                    self._frames.get_nowait()
                except queue.Empty:
                    continue
                self._drop("queue_overflow", "integration is slower than the camera; dropped the oldest frame")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.assembler.set_camera_info(msg)
        self._count("camera_info_received")  # in /diagnostics: is the camera's calibration arriving?

    def _count(self, key: str) -> None:
        with self._counters_lock:
            self.counters[key] += 1

    def _drop(self, reason: str, message: str) -> None:
        self._count(f"dropped.{reason}")
        if self._log_throttle.ready(("dropped", reason)):
            self.get_logger().warning(f"frame dropped ({reason}): {message}")

    # ------------------------------------------------------------------ workers
    def _integration_loop(self) -> None:
        while self._running:
            if self.segmenter is not None:
                self._integrate_segmented()
            try:
                images = self._frames.get(timeout=0.1 if self.segmenter is None else 0.02)
            except queue.Empty:
                continue
            self.process_images(images)

    def process_images(self, images: dict[str, Image]) -> bool:
        """Assemble and integrate one synchronised set; returns True when the map took it."""
        depth = images.get("depth")
        reference = depth if depth is not None else images["color"]  # rgb mode: the color image leads
        stamp_ns = stamp_to_ns(reference.header.stamp)
        verdict = self.order.check(stamp_ns)
        if verdict is StampVerdict.STALE:
            self._drop("stamp_not_increasing", f"stamp {stamp_ns * 1e-9:.3f} s is not after the last "
                       f"integrated frame ({self.order.last_ns * 1e-9:.3f} s)")
            return False
        if verdict is StampVerdict.JUMP_BACK:
            self._on_time_jump(stamp_ns)
        try:
            frame = self.assembler.assemble(depth, images.get("color"), images.get("labels"),
                                            images.get("confidence"), images.get("probabilities"), images.get("instances"))
            if self.segmenter is not None and self.segmenter.offer(frame, reference.header):
                self.order.accept(stamp_ns)  # integrated when its segmentation is done
                return True
            result = self.pipeline.integrate(frame)
        except SsrError as error:
            self._drop(type(error).__name__, str(error))
            return False
        except Exception as error:  # noqa: BLE001 - a bug must not kill the node
            self._drop("internal_error", repr(error))
            return False
        self.order.accept(stamp_ns)
        if result.get("not_key_frame"):  # rgb mode: too close to the last key frame to predict
            self._count("frames_not_key")
            return False
        self._count("frames_integrated")
        self.integrated_pub.publish(reference.header)
        return True

    def _on_time_jump(self, stamp_ns: int) -> None:
        """The clock went back (bag loop, simulator restart): forget the old timeline's poses and
        queued images, optionally clear the map, and let this frame through."""
        s = self.settings
        last_ns = self.order.last_ns
        self._count("time_jumps")
        horizon_ns = stamp_ns + int(s.time_jump_threshold_s * 1e9)
        poses = self.poses.discard_after(horizon_ns)
        if self.pose_source == "tf":
            self._tf_buffer.clear()
        discard = getattr(self._sync, "discard_after", None)
        images = discard(horizon_ns) if discard is not None else 0
        self.order.reset()
        cleared = ""
        if s.on_time_jump == "reset":
            cleared = f"; map cleared ({self.pipeline.reset()} blocks)"
            self.publish_mesh_update(full=True)
        self.get_logger().warning(
            f"clock jumped back {(last_ns - stamp_ns) * 1e-9:.3f} s (from {last_ns * 1e-9:.3f} s to "
            f"{stamp_ns * 1e-9:.3f} s): forgot {poses} pose(s) and {images} queued image(s) of the old timeline"
            f"{cleared}; mapping goes on"
        )

    def _completion_loop(self) -> None:
        lower_thread_priority(self.settings.completion_niceness)
        period = self.pipeline.config.scheduler.period_s
        while self._running:
            time.sleep(max(period, 0.05))
            if not self.pipeline.completion_enabled:
                continue
            try:
                self.pipeline.complete()
            except Exception as error:  # noqa: BLE001 - keep mapping without completion
                self._count("completion_errors")
                self.get_logger().error(f"completion failed: {error!r}", throttle_duration_sec=self.settings.warn_throttle_s)

    def _start_object_stage(self) -> None:
        """Object refinement every ``objects.period_s`` in a thread of its own: the object list on
        ``~/objects`` and, while subscribed, boxes and labels on ``~/object_markers``."""
        from ssr_ros.msg import ObjectList

        prior = self.pipeline.load_shape_prior()  # refuses a bad file
        self.objects_pub = self.create_publisher(ObjectList, "~/objects", LATCHED)
        self.object_markers_pub = self.create_publisher(MarkerArray, "~/object_markers", LATCHED)
        self._object_stage = threading.Thread(target=self._object_loop, args=(prior,), name="ssr_objects", daemon=True)
        self._object_stage.start()

    def _object_loop(self, prior) -> None:
        from ssr_ros.ros.conversions.object_list import objects_to_msg
        from ssr_ros.ros.conversions.object_markers import objects_to_marker_array

        period = self.pipeline.config.objects.period_s
        next_run = time.monotonic() + period
        while self._running:
            if time.monotonic() < next_run:
                time.sleep(0.05)
                continue
            next_run = time.monotonic() + period
            if self.pipeline.frames_integrated == 0:
                continue
            try:
                result = self.pipeline.refine_objects(prior)
            except Exception as error:  # noqa: BLE001 - keep mapping without object refinement
                self._count("object_errors")
                self.get_logger().error(f"object refinement failed: {error!r}", throttle_duration_sec=self.settings.warn_throttle_s)
                continue
            self._count("object_runs")
            frame_id, stamp = self._map_grid_frame(), self._stamp_ns()
            self.objects_pub.publish(objects_to_msg(result.objects, self.pipeline.taxonomy, frame_id, stamp))
            if self.object_markers_pub.get_subscription_count():
                colors = {i: tuple(int(c) for c in rgb) for i, rgb in enumerate(self.pipeline.taxonomy.colors)}
                self.object_markers_pub.publish(objects_to_marker_array(result.objects, colors, frame_id, stamp))

    def stop(self) -> None:
        self._running = False
        self._inputs.close()
        if self._object_stage is not None:
            self._object_stage.join(timeout=30)
        if self.segmenter is not None:
            self.segmenter.close()
        self._integrator.join(timeout=5)
        self._completer.join(timeout=5)
        self.pipeline.close()

    # ------------------------------------------------------------------ outputs
    def _stamp_ns(self) -> int:
        return self.order.last_ns or self.get_clock().now().nanoseconds

    def publish_mesh_update(self, full: bool = False) -> None:
        """Publish changed blocks (or every block with clear_all); serialised so that a
        consumer never sees an incremental update computed before a reset arrive after it."""
        with self._mesh_publication:
            self._publish_mesh_update(full)

    def _publish_mesh_update(self, full: bool) -> None:
        if not (self.mesh_pub.get_subscription_count() or self.marker_pub.get_subscription_count()):
            # Nobody listens: meshing would only take interpreter time from integration. The changed
            # blocks stay pending and go out with the first update after someone subscribes.
            return
        update = self.pipeline.mesh_update()
        changed, vanished = list(update.blocks.values()), update.vanished
        if full:
            blocks = self.pipeline.block_meshes()
        else:
            if not changed and not len(vanished):
                return
            blocks = changed
        stamp = self._stamp_ns()
        # serialised straight from the block meshes (a generated message per block cost ~30 us each)
        self.mesh_pub.publish(mesh_update_cdr(blocks, self.pipeline.block_extent, self._map_grid_frame(), stamp,
                                              None if full else vanished, clear_all=full))
        if self.marker_pub.get_subscription_count():
            if full and self._markers_need_full():
                self._marker_full_for = self._marker_subscribers_seen
                self._publish_markers(self._block_markers(blocks, np.zeros((0, 3), np.int64), True, stamp))
            elif changed or len(vanished):  # the marker subscribers have every block: the changes only
                self._publish_markers(self._block_markers(changed, vanished, False, stamp))

    def _publish_markers(self, records: list[MarkerRecord]) -> None:
        """Publish marker records as serialised MarkerArrays of at most ``marker_message_mb`` each
        (in order: RViz applies them one after the other, to the same end state as one array).
        An array larger than the shared-memory segment of the DDS profile (16 MB) goes out as UDP
        fragments, and sending those starved the node's camera subscriptions."""
        for part in split_marker_records(records, int(self.settings.marker_message_mb * 1e6)):
            self.marker_pub.publish(marker_array_cdr(part) if self._marker_cdr else records_to_msg(part))

    def _on_marker_matched(self, info) -> None:
        """A subscription to ``~/mesh_markers`` matched or left (``total_count`` counts every match)."""
        self._marker_subscribers_seen = int(info.total_count)

    def _markers_need_full(self) -> bool:
        """Whether a full marker array must go out: none went out yet, or a subscription matched
        since the last one (a late RViz gets the latched array, which must then hold every block).
        Subscribers that have the mesh need only the changes: rebuilding every block's markers (a
        Python object per triangle corner, ~0.6 GB for a 76 MB map) each ``full_mesh_period_s`` was
        the node's largest transient allocation."""
        return (not self._marker_matches_known or self._marker_full_for is None
                or self._marker_subscribers_seen != self._marker_full_for)

    def _block_markers(self, blocks, vanished, full: bool, stamp: int) -> list[MarkerRecord]:
        """RViz's mesh: TRIANGLE_LIST markers per map block (split at ``marker_max_triangles``),
        sent for the blocks that changed (DELETEALL and every block with ``full``), DELETE for
        blocks whose mesh vanished; the cost follows what changed. The markers are kept as
        arrays and published as a serialised MarkerArray (:func:`marker_array_cdr`): generated
        messages hold a Python object per triangle corner, seconds of CPU per update."""
        frame, namespace, limit = self.settings.map_frame, "ssr_mesh", self.settings.marker_max_triangles
        markers = []
        if full:
            markers.append(control_record(Marker.DELETEALL, frame, stamp, namespace))
            self._marker_ids.clear()
        stale = [tuple(int(v) for v in index) for index in np.asarray(vanished).reshape(-1, 3)]
        shown, deleted = [], []  # blocks with triangles, their marker ids; ids of parts no longer needed
        for block in blocks:
            index = tuple(int(v) for v in block.index)
            if len(block.triangles) == 0:
                stale.append(index)
                continue
            previous = self._marker_ids.get(index, [])
            count = part_count(len(block.triangles), limit)
            ids = previous[:count]  # the block's markers are replaced in place (ADD with the same id)
            while len(ids) < count:
                self._next_marker_id += 1
                ids.append(self._next_marker_id)
            shown.append((block, ids))
            deleted.append(previous[count:])
            self._marker_ids[index] = ids
        if shown:
            if self.settings.mesh_color_by == "rgb":
                colors = [block.colors for block, _ in shown]
            else:
                colors = [self.pipeline.taxonomy.colorize(block.labels) for block, _ in shown]
            vertices = [block.vertices for block, _ in shown]
            counts = np.cumsum([len(v) for v in vertices])[:-1]
            moved = np.split(self._to_map_frame(np.concatenate(vertices)), counts)  # one transform for all blocks
            parts = block_part_records(moved, [block.triangles for block, _ in shown], colors, [ids for _, ids in shown],
                                       frame, stamp, namespace, limit)
            for records, extra in zip(parts, deleted):
                markers += records
                markers += [control_record(Marker.DELETE, frame, stamp, namespace, i) for i in extra]
        for index in stale:
            markers += [control_record(Marker.DELETE, frame, stamp, namespace, i) for i in self._marker_ids.pop(index, [])]
        return markers

    def _to_map_frame(self, points: np.ndarray) -> np.ndarray:
        """Points of the (possibly gravity-aligned) map in ``map_frame``, the frame of the poses."""
        T_world_map = self.pipeline.T_world_map
        return points if T_world_map is None else transform_points(T_world_map, points)

    def _map_grid_frame(self) -> str:
        """frame_id of the outputs tied to the map's voxel grid (mesh blocks, voxel map, occupancy).

        ``map_frame`` unless the map is gravity-aligned (gravity.mode estimate / fixed): then the
        grid's axes are those of the aligned frame, named ``<map_frame>_gravity_aligned``
        (rotation ``T_aligned_world`` about map_frame's origin, logged when estimated).
        """
        aligned = self.pipeline.T_world_map is not None
        return f"{self.settings.map_frame}_gravity_aligned" if aligned else self.settings.map_frame

    def publish_voxels(self) -> None:
        """Voxel cloud, voxel map and planner tiers, each built only while someone subscribes to
        it (they are latched: a later subscriber gets the next publication)."""
        stamp = self._stamp_ns()
        cloud, blocks = self.voxel_pub.get_subscription_count() > 0, self.voxel_map_pub.get_subscription_count() > 0
        frame_id = self._map_grid_frame()
        if cloud or blocks:
            voxels, block_data = self.pipeline.voxel_outputs(surface=cloud, blocks=blocks)
            if cloud:
                self.voxel_pub.publish(semantic_cloud_to_msg(
                    self._to_map_frame(voxels["points"]), voxels["colors"], voxels["labels"], voxels["confidence"],
                    voxels["observed"], self.settings.map_frame, stamp,
                ))
            if blocks:
                coords, layers = block_data  # serialised in one pass (a message object per block took ~0.5 s)
                self.voxel_map_pub.publish(voxel_map_cdr(
                    coords, layers, self.pipeline.map.voxel_size, self.pipeline.map.block_size,
                    self.pipeline.map.truncation, self.pipeline.taxonomy, frame_id, stamp,
                ))
        self.publish_planning(frame_id, stamp)

    def _planning_publishers(self) -> dict:
        """Publisher of each planner output, by its name in :class:`ssr_ros.planning.PlanningOutputs`."""
        publishers = {"occupancy": self.occupancy_pub, "cost": self.cost_pub, "esdf_2d": self.esdf_slice_pubs[""],
                      "esdf_2d_predicted": self.esdf_slice_pubs["_predicted"]}
        if self.esdf_pubs:
            publishers.update(esdf_3d=self.esdf_pubs[""], esdf_3d_predicted=self.esdf_pubs["_predicted"])
        return publishers

    def publish_planning(self, frame_id: str, stamp: int) -> None:
        """The planner tiers (:mod:`ssr_ros.planning`), all in the map grid's frame: each computed
        and published only while it has a subscriber (latched: a later subscriber gets the next
        publication); nothing is computed while none has one."""
        publishers = self._planning_publishers()
        wanted = [name for name, pub in publishers.items() if pub.get_subscription_count() > 0]
        if not wanted:
            return
        outputs = self.pipeline.planning_outputs(with_3d=bool(self.esdf_pubs), wanted=wanted)
        self.last_floor = outputs.floor
        for name in wanted:
            value = getattr(outputs, name)
            if name in ("occupancy", "cost"):
                publishers[name].publish(occupancy_to_msg(value, frame_id, stamp))
            else:
                publishers[name].publish(field_to_msg(value, frame_id, stamp))

    def release_heap(self) -> None:
        """Hand the malloc arenas' free pages back to the kernel (``heap_release_period_s``): the
        outputs' large copies are freed in whichever thread built them, and glibc keeps that space
        in the thread's arena; without this, RSS holds the high-water mark of every arena."""
        start = time.perf_counter()
        release_free_heap()
        self.heap_release_s += time.perf_counter() - start
        self.heap_releases += 1

    def publish_diagnostics(self) -> None:
        stats = self.pipeline.stats()
        status = DiagnosticStatus(name="ssr_mapper: mapping", hardware_id=str(self.pipeline.device))
        with self._counters_lock:
            counters = dict(self.counters)
        unsynchronised = getattr(self._sync, "dropped", 0) + getattr(self._geometry_sync, "dropped", 0)
        dropped = sum(v for k, v in counters.items() if k.startswith("dropped.")) + unsynchronised
        refused = sum(v for k, v in counters.items() if k.startswith("poses_refused."))
        status.level = DiagnosticStatus.OK if dropped == 0 and refused == 0 else DiagnosticStatus.WARN
        status.message = (f"{counters.get('frames_integrated', 0)} frames integrated, {dropped} dropped"
                          + (f", {refused} poses refused" if refused else ""))
        values = {**counters, **({"dropped.unsynchronised": unsynchronised} if unsynchronised else {}),
                  "time_jumps": counters.get("time_jumps", 0), "pose_time_jumps": self.poses.time_jumps,
                  "blocks": stats["num_blocks"], "memory_bytes": stats["memory_bytes"],
                  "bytes_per_voxel": f"{stats['bytes_per_voxel']:.2f}", "chunks_completed": stats["chunks_completed"],
                  "pending_chunks": stats["pending_chunks"], "predicted_voxels": stats["predicted_voxels"],
                  "frame_queue": self._frames.qsize(), "gravity_held_frames": stats["gravity_held_frames"]}
        if self.last_floor is not None:
            values["floor_height_m"] = f"{self.last_floor.height:.3f}"
            values["floor_source"] = self.last_floor.source
        for key in ("map_bytes", "outputs_cover", "memory_budget_bytes", "blocks_on_disk", "blocks_evicted",
                    "blocks_reloaded", "blocks_cleared", "over_budget"):
            if key in stats:
                values[key] = stats[key]
        if self.pipeline.gravity is not None and self.pipeline.config.gravity.aligns:
            values["gravity_up"] = " ".join(f"{v:.4f}" for v in self.pipeline.gravity.up)
            values["gravity_T_aligned_world"] = " ".join(f"{v:.6f}" for v in self.pipeline.gravity.T_aligned_world[:3, :3].ravel())
        values.update({f"process_{name}": value for name, value in process_memory(arenas=self.own_process).items()})
        values["completion_model_bytes"] = stats.get("completion_model_bytes", 0)
        values["map_reserved_bytes"] = stats.get("reserved_bytes", 0)  # the voxel tensors with spare capacity
        if self.heap_releases:
            values["heap_release_mean_ms"] = f"{1e3 * self.heap_release_s / self.heap_releases:.2f}"
        for name, timing in stats["timings"].items():
            values[f"{name}_mean_ms"] = f"{timing['mean_s'] * 1e3:.2f}"
            values[f"{name}_count"] = timing["count"]
        status.values = [KeyValue(key=str(k), value=str(v)) for k, v in sorted(values.items())]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self.diagnostics_pub.publish(array)

    # ------------------------------------------------------------------ services
    def _on_save(self, request, response):
        if not request.path.strip():
            response.success = False
            response.message = ("save_map needs a path: the directory to write the map files into "
                                "(nothing written; a relative path is taken from the node's working directory)")
            return response
        directory = Path(request.path).expanduser().absolute()
        try:
            files = self.pipeline.save(directory, list(request.formats))
        except SsrError as error:
            response.success, response.message = False, str(error)
            return response
        response.success = True
        response.files = [str(f) for f in files]
        response.message = f"wrote {len(files)} file(s) to {directory}: {', '.join(f.name for f in files)}"
        return response

    def _on_load(self, request, response):
        try:
            self.pipeline.load(request.path)
        except SsrError as error:
            response.success, response.message = False, f"{error} (current map kept)"
            return response
        self.order.reset()
        self._marker_full_for = None  # a new map: every marker subscriber needs all of it
        self.publish_mesh_update(full=True)
        stats = self.pipeline.stats()
        response.success = True
        response.message = f"loaded {stats['num_blocks']} blocks at {stats['voxel_size']:.3f} m from {request.path}"
        return response

    def _on_complete(self, _request, response):
        if not self.pipeline.completion_enabled:
            reason = self.pipeline.completion_withheld or "completion.type none or no weights"
            response.success, response.message = False, f"completion is off: {reason}"
            return response
        try:
            chunks = self.pipeline.complete(everything=True)
        except Exception as error:  # noqa: BLE001 - report, keep the node alive
            response.success, response.message = False, f"completion failed: {error!r}"
            return response
        self.publish_mesh_update()
        response.success, response.message = True, f"completed {chunks} chunk(s)"
        return response

    def _on_region(self, request, response):
        """The voxels of a box, evicted blocks included (``~/get_voxel_region``)."""
        lo = np.array([request.min.x, request.min.y, request.min.z], dtype=np.float64)
        hi = np.array([request.max.x, request.max.y, request.max.z], dtype=np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            response.success = False
            response.message = f"the box must be finite with min < max on every axis; got min {lo.tolist()} max {hi.tolist()}"
            return response
        extent = self.pipeline.block_extent
        blocks = np.prod(np.floor(hi / extent) - np.floor(lo / extent) + 1)
        if blocks > self.settings.region_max_blocks:
            response.success = False
            response.message = (f"the box spans up to {int(blocks)} blocks of {extent:.2f} m; at most "
                                f"region_max_blocks = {self.settings.region_max_blocks} are returned at once")
            return response
        try:
            coords, layers = self.pipeline.voxel_blocks_in_region(lo, hi)
        except SsrError as error:
            response.success = False
            response.message = f"cannot read the region: {error}"
            return response
        voxel, block = self.pipeline.map.voxel_size, self.pipeline.map.block_size
        response.map = boxes_to_map_msg(voxel_blocks_to_boxes(coords, layers, voxel, block), voxel,
                                        self.pipeline.map.truncation, self.pipeline.taxonomy, self._map_grid_frame(),
                                        self._stamp_ns())
        response.success = True
        response.message = f"{len(coords)} blocks"
        return response

    def _on_reset(self, _request, response):
        dropped = self.pipeline.reset()
        self.order.reset()
        self._marker_full_for = None  # DELETEALL for every marker subscriber
        self.publish_mesh_update(full=True)
        response.success = True
        response.message = f"cleared {dropped} blocks"
        return response


_ARENA_LIMIT = {"applied": None}
"""The malloc arena limit :func:`main` set before ROS started (None: not set by main)."""


def command_line_arena_max(args: list[str]) -> int:
    """``malloc_arena_max`` as the node's process must apply it before ROS starts its threads: a
    ``-p malloc_arena_max:=N`` on the command line, else the parameter's default (a parameters
    file is read only once the DDS threads run, too late for their arenas)."""
    value = NodeConfig().malloc_arena_max
    for flag, assignment in zip(args, args[1:]):
        name, sep, text = assignment.partition(":=")
        if flag in ("-p", "--param") and sep and name == "malloc_arena_max":
            try:
                value = int(text)
            except ValueError:
                pass  # the node's parameter check names the bad value
    return value


def main(args: list[str] | None = None) -> int:
    from ssr_ros.ros.dds_transport import apply_transport_profile

    try:
        transport = apply_transport_profile()  # before the first DDS participant exists
    except SsrError as error:
        print(f"ssr_mapper: {error}", file=sys.stderr)
        return 2
    if "MALLOC_ARENA_MAX" not in os.environ:  # glibc read the environment's setting at start-up: it wins
        arena_max = command_line_arena_max(sys.argv if args is None else list(args))
        limit_malloc_arenas(arena_max)  # before rclpy starts the DDS threads, each of which would get an arena
        _ARENA_LIMIT["applied"] = arena_max
    rclpy.init(args=args)
    from rclpy.exceptions import InvalidParameterValueException

    try:
        node = MapperNode(own_process=True)
    except (SsrError, InvalidParameterValueException) as error:
        print(f"ssr_mapper: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    node.get_logger().info(transport)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
