"""Parameters of the mapper node's ROS side (topics, frames, QoS, publication rates).

Kept free of rclpy so that documentation and the ``ssr params`` listing work anywhere; the map,
completion and scheduler parameters come from :class:`ssr_ros.pipeline.PipelineConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ssr_ros.config import param, validate_config
from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS


@dataclass
class TopicsConfig:
    """Input topic names (defaults match a RealSense driver and ``ssr synth`` bags)."""

    color: str = param(DEFAULT_TOPICS.color, "color image (rgb8, bgr8, rgba8, bgra8, mono8); empty = depth only")
    depth: str = param(DEFAULT_TOPICS.depth, "depth image registered to color (16UC1 mm or 32FC1 m)")
    camera_info: str = param(DEFAULT_TOPICS.camera_info, "CameraInfo of the (rectified) depth/color images")
    labels: str = param(DEFAULT_TOPICS.labels, "2D semantic label image (mono8/mono16 class ids); while no node "
                        "publishes it frames are integrated without labels; empty = none")
    label_confidence: str = param(
        "", "per-pixel confidence of the label image (32FC1 0..1, mono8 0..255, mono16); empty = none (needs labels)"
    )
    label_probabilities: str = param(
        "", "per-class probabilities instead of labels: 32FC<N> / 8UC<N> with N = the taxonomy's classes, or "
        "class-major planes (probabilities_layout 'chw'); empty = none",
    )
    instances: str = param(
        "", "2D object instance image (mono8/mono16 ids, 0 = none; ids group one frame's pixels, the map associates "
        "them across frames); the objects stage then takes its instances from them; empty = none",
    )
    pose: str = param(DEFAULT_TOPICS.pose, "camera pose topic when pose_source is 'topic'")


@dataclass
class NodeConfig:
    """ROS-side behaviour of the mapper node (the map itself is configured by PipelineConfig)."""

    map_frame: str = param("map", "fixed frame of the map (REP 105); poses are expressed in it")
    pose_source: str = param("auto", "'tf' (tf2_ros), 'topic' (the pose topic), 'auto' (tf where tf2_ros is installed)",
                             choices=["auto", "tf", "topic"])
    pose_type: str = param("PoseStamped", "message type of the pose topic",
                           choices=["PoseStamped", "PoseWithCovarianceStamped", "TransformStamped", "Odometry"])
    camera_in_pose_frame: list[float] = param(
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        "pose of the camera's optical frame (z forward, x right, y down) in the frame the pose topic tracks, "
        "x y z qx qy qz qw, e.g. the static base_link -> camera_color_optical_frame transform when it gives "
        "base_link (odometry); identity (the default): taken from TF (/tf_static) when the pose's child frame "
        "differs from the images' frame_id, else none")
    pose_child_frame: str = param(
        "", "frame whose pose a PoseStamped / PoseWithCovarianceStamped pose topic gives (Odometry and "
        "TransformStamped name it in child_frame_id); empty: the camera's optical frame. Its transform to the "
        "images' frame_id comes from camera_in_pose_frame when set, else from TF (/tf_static)")
    pose_max_gap_s: float = param(0.5, "largest gap between two poses that is interpolated, seconds", low=0.001, high=60.0)
    pose_wait_s: float = param(0.5, "how long a frame waits for a pose that has not arrived yet, seconds", low=0.0, high=10.0)
    pose_tolerance_s: float = param(0.005, "a pose this close in time to a frame is used as is, seconds", low=0.0, high=1.0)
    tf_timeout_s: float = param(0.05, "how long to wait for a TF transform, seconds", low=0.0, high=5.0)
    sensor_qos: str = param("sensor_data", "QoS of the inputs: 'sensor_data' (best effort) or 'reliable'",
                            choices=["sensor_data", "reliable"])
    sync_slop_s: float = param(0.02, "largest stamp difference of images of one frame, seconds", low=0.0, high=1.0)
    sync_queue_size: int = param(10, "messages per input kept for synchronisation", low=1, high=100000)
    frame_queue_size: int = param(
        16, "synchronised frames waiting for integration (oldest dropped when full): ~0.5 s at 30 Hz, so the node's "
        "periodic output work (a mesh update takes ~0.5 s of CPU at 640x480) delays frames instead of dropping them; "
        "each waiting frame holds its images (~1.5 MB at 640x480)", low=1, high=100000)
    depth_scale: float = param(0.001, "metres per unit of 16UC1 depth", low=1e-6, high=1.0)
    ignore_distortion: bool = param(False, "accept CameraInfo with distortion (images are used as if rectified)")
    mesh_period_s: float = param(1.0, "seconds between incremental mesh updates", low=0.05, high=3600.0)
    full_mesh_period_s: float = param(10.0, "seconds between full mesh republications (late subscribers)", low=0.5, high=3600.0)
    region_max_blocks: int = param(
        20000, "~/get_voxel_region returns at most this many blocks at once (a bigger box is refused)", low=1, high=10_000_000)
    voxel_period_s: float = param(5.0, "seconds between voxel cloud / voxel map / occupancy / distance field publications", low=0.1, high=3600.0)
    mesh_color_by: str = param("rgb", "marker mesh colors: fused 'rgb' or class 'label' colors", choices=["rgb", "label"])
    marker_max_triangles: int = param(65536, "triangles per RViz marker before splitting", low=1, high=10_000_000)
    marker_message_mb: float = param(4.0, "largest MarkerArray message of RViz's mesh, MB (larger updates go out as several arrays)",
                                     low=0.1, high=1000.0)
    publish_esdf_3d: bool = param(
        False, "also publish the 3D distance fields (~/esdf, ~/esdf_predicted: one point per known voxel; large) "
        "besides the 2D slices")
    completion_niceness: int = param(
        10, "niceness of the completion thread (Linux: os.setpriority on its thread id; 0 = as the node): with the "
        "cores busy, the kernel runs integration before the periodic completion and room layout, which take the "
        "time left over", low=0, high=19)
    time_jump_threshold_s: float = param(
        1.0, "a frame or pose stamped this long before the newest one means the clock jumped back (bag loop, "
        "simulator restart): the pose and image buffers are cleared and mapping goes on, seconds", low=0.001, high=86400.0)
    on_time_jump: str = param("continue", "after the clock jumps back: keep the map ('continue') or clear it ('reset')",
                              choices=["continue", "reset"])
    warn_throttle_s: float = param(5.0, "at most one warning per reason in this many seconds", low=0.0, high=3600.0)
    probabilities_layout: str = param(
        "hwc", "layout of topics.label_probabilities: 'hwc' (32FC<N> / 8UC<N>, a pixel's classes adjacent) or 'chw' "
        "(one-channel 32FC1 / 8UC1 image of N stacked class planes, height N * H)", choices=["hwc", "chw"],
    )
    malloc_arena_max: int = param(
        2, "at most this many glibc malloc arenas in the node's process (what MALLOC_ARENA_MAX sets, which wins "
        "when set); applied at start-up before ROS starts its threads, so it is read from the command line "
        "(-p malloc_arena_max:=N), not from a parameters file; 0 = glibc's default of 8 per core. Each thread "
        "that allocates otherwise gets an arena of its own whose freed space stays in the process", low=0, high=1024)
    heap_release_period_s: float = param(
        5.0, "seconds between handing the malloc arenas' free pages back to the kernel (malloc_trim) in the node's "
        "process: the freed copies of past outputs stop counting in RSS; 0 = never", low=0.0, high=3600.0)
    topics: TopicsConfig = field(default_factory=TopicsConfig)

    def validate(self) -> "NodeConfig":
        validate_config(self)
        self.camera_extrinsic()
        return self

    def explicit_camera_extrinsic(self):
        """``camera_extrinsic()`` when ``camera_in_pose_frame`` is set (not identity), else None."""
        T = self.camera_extrinsic()
        import numpy as np

        return None if np.allclose(T, np.eye(4)) else T

    def camera_extrinsic(self):
        """(4, 4) T_posed_camera from ``camera_in_pose_frame``; ConfigError when it is not a rigid pose."""
        from ssr_ros.errors import ConfigError, InvalidPose
        from ssr_ros.geometry.pose import matrix_from_quaternion

        values = list(self.camera_in_pose_frame)
        if len(values) != 7:
            raise ConfigError(f"camera_in_pose_frame={values} must hold 7 numbers: x y z qx qy qz qw")
        try:
            return matrix_from_quaternion(values[:3], values[3:], "camera_in_pose_frame")
        except InvalidPose as error:
            raise ConfigError(str(error)) from error
