"""Write ``Frame``s as a rosbag2 file with the topics a RealSense-style driver publishes.

Per frame, all stamped with the frame's ``stamp_ns`` (header stamp and bag log time):

| topic (``DEFAULT_TOPICS``) | type | content |
| --- | --- | --- |
| ``/camera/color/image_raw`` | sensor_msgs/Image | rgb8 |
| ``/camera/aligned_depth_to_color/image_raw`` | sensor_msgs/Image | 16UC1 millimetres (or 32FC1 metres) |
| ``/camera/color/camera_info`` | sensor_msgs/CameraInfo | K, P, no distortion |
| ``/camera/semantic/labels`` | sensor_msgs/Image | mono8 class ids (mono16 above 255) |
| ``/tf`` | tf2_msgs/TFMessage | ``map`` -> ``camera_color_optical_frame`` |
| ``/camera/pose`` | geometry_msgs/PoseStamped | camera pose in ``map`` |

Sensor messages carry ``frame_id = camera_color_optical_frame``. Bags are written with the
``rosbags`` library in rosbag2 format version 8 (readable by ``ros2 bag`` since Iron), in
``sqlite3`` or ``mcap`` storage, with ROS 2 Kilted message definitions; ``compress=True``
compresses each message with zstd (rosbag2's ``message`` compression mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssr_ros.errors import DatasetError, InvalidInput
from ssr_ros.geometry.frame import Frame
from ssr_ros.geometry.pose import quaternion_from_matrix
from ssr_ros.image_encoding import encode_image


@dataclass(frozen=True)
class CameraTopics:
    """Topic names of an RGB-D camera with semantics and pose."""

    color: str = "/camera/color/image_raw"
    depth: str = "/camera/aligned_depth_to_color/image_raw"
    camera_info: str = "/camera/color/camera_info"
    labels: str = "/camera/semantic/labels"
    tf: str = "/tf"
    pose: str = "/camera/pose"


DEFAULT_TOPICS = CameraTopics()
"""The topics generated bags use and the mapping node subscribes to by default."""

INSTANCES_TOPIC = "/camera/semantic/instances"
"""2D object instance images (mono16) in the bags ``ssr synth`` writes; read by default when a
bag has it (the node subscribes only when ``topics.instances`` names it)."""

MAP_FRAME = "map"
CAMERA_FRAME = "camera_color_optical_frame"
BAG_VERSION = 8
STORAGE_PLUGINS = ("sqlite3", "mcap")


def typestore():
    """The rosbags type store used for reading and writing (ROS 2 Kilted definitions)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def stamp_msg(store, stamp_ns: int):
    Time = store.types["builtin_interfaces/msg/Time"]
    return Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))


def depth_to_16uc1(depth: np.ndarray) -> np.ndarray:
    """(H, W) uint16 millimetres of a depth image in metres; invalid (0/NaN/Inf/<0) -> 0."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    mm = np.where(valid, np.round(depth * 1000.0), 0)
    return np.clip(mm, 0, 65535).astype(np.uint16)


class RosbagWriter:
    """Context manager writing frames to a new rosbag2 directory ``path``::

        with RosbagWriter("out/bag", storage="mcap") as writer:
            for frame in frames:
                writer.write(frame)
    """

    def __init__(
        self,
        path: str | Path,
        storage: str = "sqlite3",
        topics: CameraTopics = DEFAULT_TOPICS,
        depth_encoding: str = "16UC1",
        world_frame: str = MAP_FRAME,
        camera_frame: str = CAMERA_FRAME,
        compress: bool = False,
    ):
        if storage not in STORAGE_PLUGINS:
            raise InvalidInput(f"bag storage '{storage}' not supported; expected one of {list(STORAGE_PLUGINS)}")
        if depth_encoding not in ("16UC1", "32FC1"):
            raise InvalidInput(f"depth encoding '{depth_encoding}' not supported; expected 16UC1 or 32FC1")
        self.path = Path(path)
        if self.path.exists():
            raise DatasetError(f"bag '{self.path}' already exists; rosbag2 writes a new directory")
        self.storage = storage
        self.topics = topics
        self.depth_encoding = depth_encoding
        self.world_frame = world_frame
        self.camera_frame = camera_frame
        self.compress = compress
        self.num_frames = 0
        self._writer = None

    def __enter__(self) -> "RosbagWriter":
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._store = typestore()
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
        if self.compress:
            from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

            self._writer.set_compression(CompressionMode.MESSAGE, CompressionFormat.ZSTD)
        self._writer.open()
        add = lambda topic, msgtype: self._writer.add_connection(topic, msgtype, typestore=self._store)  # noqa: E731
        self._conn = {
            "color": add(self.topics.color, "sensor_msgs/msg/Image"),
            "depth": add(self.topics.depth, "sensor_msgs/msg/Image"),
            "camera_info": add(self.topics.camera_info, "sensor_msgs/msg/CameraInfo"),
            "labels": add(self.topics.labels, "sensor_msgs/msg/Image"),
            "tf": add(self.topics.tf, "tf2_msgs/msg/TFMessage"),
            "pose": add(self.topics.pose, "geometry_msgs/msg/PoseStamped"),
        }
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _header(self, stamp_ns: int, frame_id: str):
        return self._store.types["std_msgs/msg/Header"](stamp=stamp_msg(self._store, stamp_ns), frame_id=frame_id)

    def image_message(self, stamp_ns: int, array: np.ndarray, encoding: str):
        """A sensor_msgs/Image of ``array`` in ``encoding``, stamped, in the camera frame."""
        height, width, step, data = encode_image(array, encoding)
        Image = self._store.types["sensor_msgs/msg/Image"]
        return Image(
            header=self._header(stamp_ns, self.camera_frame), height=height, width=width, encoding=encoding,
            is_bigendian=0, step=step, data=np.frombuffer(data, dtype=np.uint8),
        )

    def add_topic(self, key: str, topic: str, msgtype: str = "sensor_msgs/msg/Image") -> None:
        """Declare another topic (e.g. a label confidence or probability image) written with
        :meth:`write_message` under ``key``."""
        if self._writer is None:
            raise DatasetError("RosbagWriter used outside 'with RosbagWriter(...)'")
        if key in self._conn:
            raise InvalidInput(f"topic key '{key}' is already declared")
        self._conn[key] = self._writer.add_connection(topic, msgtype, typestore=self._store)

    def write_message(self, key: str, msg, stamp_ns: int) -> None:
        """Write ``msg`` on the topic of ``key`` (a ``CameraTopics`` field name) at ``stamp_ns``."""
        if self._writer is None:
            raise DatasetError("RosbagWriter used outside 'with RosbagWriter(...)'")
        self._writer.write(self._conn[key], stamp_ns, self._store.serialize_cdr(msg, msg.__msgtype__))

    def write(self, frame: Frame) -> None:
        """Write one frame's messages (color, labels, camera_info and pose only when present)."""
        if self._writer is None:
            raise DatasetError("RosbagWriter.write called outside 'with RosbagWriter(...)'")
        frame.validate()
        t = int(frame.stamp_ns)
        store = self._store
        K = frame.intrinsics
        if frame.rgb is not None:
            self.write_message("color", self.image_message(t, np.ascontiguousarray(frame.rgb), "rgb8"), t)
        if self.depth_encoding == "16UC1":
            depth = self.image_message(t, depth_to_16uc1(frame.depth), "16UC1")
        else:
            d = np.where(frame.valid_depth_mask(), frame.depth, 0).astype(np.float32)
            depth = self.image_message(t, d, "32FC1")
        self.write_message("depth", depth, t)
        CameraInfo = store.types["sensor_msgs/msg/CameraInfo"]
        RegionOfInterest = store.types["sensor_msgs/msg/RegionOfInterest"]
        info = CameraInfo(
            header=self._header(t, self.camera_frame), height=K.height, width=K.width, distortion_model="plumb_bob",
            d=np.zeros(5), k=K.matrix.reshape(-1), r=np.eye(3).reshape(-1),
            p=np.hstack([K.matrix, np.zeros((3, 1))]).reshape(-1), binning_x=0, binning_y=0,
            roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
        )
        self.write_message("camera_info", info, t)
        if frame.labels is not None:
            labels = np.asarray(frame.labels)
            if labels.min(initial=0) < 0 or labels.max(initial=0) > 65535:
                raise InvalidInput(f"label ids must lie in [0, 65535] to be written, got [{labels.min()}, {labels.max()}]")
            if labels.max(initial=0) < 256:
                self.write_message("labels", self.image_message(t, labels.astype(np.uint8), "mono8"), t)
            else:
                self.write_message("labels", self.image_message(t, labels.astype(np.uint16), "mono16"), t)
        translation, q = quaternion_from_matrix(frame.T_world_cam)
        Vector3 = store.types["geometry_msgs/msg/Vector3"]
        Quaternion = store.types["geometry_msgs/msg/Quaternion"]
        Point = store.types["geometry_msgs/msg/Point"]
        quat = Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))
        transform = store.types["geometry_msgs/msg/TransformStamped"](
            header=self._header(t, self.world_frame), child_frame_id=self.camera_frame,
            transform=store.types["geometry_msgs/msg/Transform"](translation=Vector3(x=float(translation[0]), y=float(translation[1]), z=float(translation[2])), rotation=quat),
        )
        self.write_message("tf", store.types["tf2_msgs/msg/TFMessage"](transforms=[transform]), t)
        pose = store.types["geometry_msgs/msg/PoseStamped"](
            header=self._header(t, self.world_frame),
            pose=store.types["geometry_msgs/msg/Pose"](position=Point(x=float(translation[0]), y=float(translation[1]), z=float(translation[2])), orientation=quat),
        )
        self.write_message("pose", pose, t)
        self.num_frames += 1


def write_bag(
    frames, path: str | Path, storage: str = "sqlite3", topics: CameraTopics = DEFAULT_TOPICS, depth_encoding: str = "16UC1", compress: bool = False
) -> int:
    """Write an iterable of frames to a new bag; returns the number of frames written."""
    with RosbagWriter(path, storage=storage, topics=topics, depth_encoding=depth_encoding, compress=compress) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.num_frames
