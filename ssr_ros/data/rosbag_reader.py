"""Read ``Frame``s from a rosbag2 file (sqlite3 or mcap) with ``rosbags``; no ROS needed.

Each depth image becomes one frame. Color and label images are matched to it by header
stamp (nearest within ``max_sync_ns``), intrinsics come from the latest CameraInfo, and the
pose is looked up at the depth stamp from a pose topic (geometry_msgs/PoseStamped,
PoseWithCovarianceStamped, nav_msgs/Odometry) or from ``/tf`` + ``/tf_static`` (chains of
transforms from ``world_frame`` down to the camera frame), interpolated between samples
no more than ``max_pose_gap_ns`` apart. Frames without a match are skipped and counted in
``skipped`` (reason -> count).

Topics default to ``rosbag_writer.DEFAULT_TOPICS`` when the bag has them; otherwise they
are guessed from message types and names (``depth`` / ``color``, ``rgb``, ``image`` /
``label``, ``semantic``), and ``topics()`` lists what a bag holds. Problems are reported as
``DatasetError`` naming the bag, the topic and what is wrong.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from ssr_ros.data.rosbag_writer import DEFAULT_TOPICS, INSTANCES_TOPIC, MAP_FRAME, typestore
from ssr_ros.errors import DatasetError, InvalidInput, TransformUnavailable
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame
from ssr_ros.geometry.pose import matrix_from_quaternion
from ssr_ros.geometry.transform_tree import CameraPoseResolver, StaticTransforms
from ssr_ros.image_encoding import COLOR_ENCODINGS, DEPTH_ENCODINGS, LABEL_ENCODINGS, color_to_rgb, decode_image, depth_to_metres, labels_to_ids
from ssr_ros.semantics.inputs import confidence_from_image, probabilities_from_image

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POSE_TYPES = ("geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/PoseWithCovarianceStamped", "nav_msgs/msg/Odometry")
TF = "tf2_msgs/msg/TFMessage"


def _stamp(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


@dataclass
class _Sample:
    stamp: int
    msg: object


class _PoseTrack:
    """Time series of rigid transforms with interpolation."""

    def __init__(self):
        self.stamps: list[int] = []
        self.poses: list[np.ndarray] = []

    def add(self, stamp: int, T: np.ndarray) -> None:
        i = bisect.bisect_right(self.stamps, stamp)
        self.stamps.insert(i, stamp)
        self.poses.insert(i, T)

    def covers(self, stamp: int) -> bool:
        return bool(self.stamps) and self.stamps[-1] >= stamp

    def at(self, stamp: int, max_gap_ns: int) -> np.ndarray | None:
        if not self.stamps:
            return None
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            return self.poses[i]
        if i == 0 or i == len(self.stamps):
            return None
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        if t1 - t0 > max_gap_ns:
            return None
        a = (stamp - t0) / (t1 - t0)
        T0, T1 = self.poses[i - 1], self.poses[i]
        slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([T0[:3, :3], T1[:3, :3]])))
        T = np.eye(4)
        T[:3, :3] = slerp([a]).as_matrix()[0]
        T[:3, 3] = (1 - a) * T0[:3, 3] + a * T1[:3, 3]
        return T


class _TfTree:
    """Dynamic and static transforms by child frame: child -> (parent, track)."""

    def __init__(self):
        self.dynamic: dict[str, tuple[str, _PoseTrack]] = {}
        self.static: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, msg, static: bool, name: str) -> None:
        for ts in msg.transforms:
            tr, q = ts.transform.translation, ts.transform.rotation
            T = matrix_from_quaternion([tr.x, tr.y, tr.z], [q.x, q.y, q.z, q.w], name=f"{name} {ts.header.frame_id}->{ts.child_frame_id}")
            parent = ts.header.frame_id.lstrip("/")
            child = ts.child_frame_id.lstrip("/")
            if static:
                self.static[child] = (parent, T)
            else:
                self.dynamic.setdefault(child, (parent, _PoseTrack()))[1].add(_stamp(ts.header), T)

    def chain(self, world: str, child: str) -> list[str] | None:
        frames = [child]
        while frames[-1] != world:
            link = self.dynamic.get(frames[-1]) or self.static.get(frames[-1])
            if link is None or len(frames) > 64:
                return None
            frames.append(link[0])
        return frames

    def covers(self, world: str, child: str, stamp: int) -> bool:
        frames = self.chain(world, child)
        if frames is None:
            return False
        return all(self.dynamic[f][1].covers(stamp) for f in frames[:-1] if f in self.dynamic)

    def lookup(self, world: str, child: str, stamp: int, max_gap_ns: int) -> np.ndarray | None:
        frames = self.chain(world, child)
        if frames is None:
            return None
        T = None
        for f in frames[:-1]:  # child first: T_world_child = T_world_p ... T_p_child
            if f in self.dynamic:
                link = self.dynamic[f][1].at(stamp, max_gap_ns)
                if link is None:
                    return None
            else:
                link = self.static[f][1]
            T = link if T is None else link @ T
        return np.eye(4) if T is None else T


class RosbagReader:
    """Iterate the frames of a rosbag2 file; see the module docstring.

    path: bag directory (or its .db3 / .mcap file). Topic arguments override the guesses.
    pose_source: ``"auto"`` (pose topic if any, else TF), ``"topic"``, ``"tf"``.
    camera_frame: TF child frame of the camera (default: the depth images' frame_id).
    camera_in_pose_frame: (4, 4) pose of the camera in the frame a pose topic tracks, or None: then
    it comes from ``/tf_static`` when that frame (Odometry's child_frame_id, or
    ``pose_child_frame`` for PoseStamped) differs from the camera's, else identity. Poses
    expressed in a frame other than ``world_frame`` are brought into it by ``/tf_static``; frames
    whose transforms are unknown are skipped, counted with the reason.
    max_sync_ns: largest stamp difference of color / labels to the depth image.
    """

    def __init__(
        self,
        path: str | Path,
        color_topic: str | None = None,
        depth_topic: str | None = None,
        camera_info_topic: str | None = None,
        labels_topic: str | None = None,
        pose_topic: str | None = None,
        label_confidence_topic: str | None = None,
        label_probabilities_topic: str | None = None,
        num_classes: int | None = None,
        probabilities_layout: str = "hwc",
        pose_source: str = "auto",
        world_frame: str = MAP_FRAME,
        camera_frame: str | None = None,
        camera_in_pose_frame: np.ndarray | None = None,
        pose_child_frame: str = "",
        max_sync_ns: int = 20_000_000,
        max_pose_gap_ns: int = 200_000_000,
        depth_scale: float = 0.001,
        require_color: bool = True,
        instances_topic: str | None = None,
    ):
        if pose_source not in ("auto", "topic", "tf"):
            raise InvalidInput(f"pose_source '{pose_source}' not supported; expected auto, topic or tf")
        path = Path(path)
        if path.is_file() and path.suffix in (".db3", ".mcap"):
            path = path.parent
        self.path = path
        if not (path / "metadata.yaml").exists() and not any(path.glob("*.mcap")):
            raise DatasetError(f"'{path}' is not a rosbag2 directory (no metadata.yaml)")
        self.world_frame = world_frame
        self.camera_frame = camera_frame
        self.camera_in_pose_frame = camera_in_pose_frame
        self.pose_child_frame = pose_child_frame
        self._pose_frames = ("", pose_child_frame)  # (frame_id, child) of the latest pose message
        self.max_sync_ns = int(max_sync_ns)
        self.max_pose_gap_ns = int(max_pose_gap_ns)
        self.depth_scale = depth_scale
        self.require_color = require_color
        self.skipped: Counter = Counter()
        self._store = typestore()
        available = self.topics()
        images = sorted(t for t, m in available.items() if m == IMAGE)

        def pick(given, default, candidates, what):
            if given is not None:
                if given not in available:
                    raise DatasetError(f"bag '{path}' has no topic '{given}' for {what}; it has {sorted(available)}")
                return given
            if default in available:
                return default
            return candidates[0] if len(candidates) == 1 else None

        self.depth_topic = pick(depth_topic, DEFAULT_TOPICS.depth, [t for t in images if "depth" in t], "depth")
        if self.depth_topic is None:
            listing = ", ".join(f"{t} ({m})" for t, m in sorted(available.items())) or "none"
            what = "no depth image topic" if not [t for t in images if "depth" in t] else "several depth image topics"
            raise DatasetError(f"bag '{path}' has {what}; pass the depth topic. Its topics: {listing}")
        # 2D semantics: label ids (+ a per-pixel confidence) or per-class probabilities, as the node takes them
        self.label_confidence_topic = pick(label_confidence_topic, None, [], "label confidence") if label_confidence_topic else None
        self.label_probabilities_topic = (pick(label_probabilities_topic, None, [], "label probabilities")
                                          if label_probabilities_topic else None)
        if self.label_probabilities_topic and not num_classes:
            raise InvalidInput("label_probabilities_topic needs num_classes (the taxonomy's class count)")
        self.num_classes, self.probabilities_layout = num_classes, probabilities_layout
        self.instances_topic = pick(instances_topic, INSTANCES_TOPIC, [], "2D instances")
        semantic_given = {self.label_confidence_topic, self.label_probabilities_topic, self.instances_topic} - {None}
        self.labels_topic = None if self.label_probabilities_topic else pick(
            labels_topic, DEFAULT_TOPICS.labels,
            [t for t in images if ("label" in t or "semantic" in t) and t not in semantic_given], "labels")
        if self.label_confidence_topic and not self.labels_topic:
            raise InvalidInput("label_confidence_topic needs a labels topic (the ids the confidence belongs to)")
        semantic_given |= {self.labels_topic} - {None}
        color_candidates = [t for t in images if t != self.depth_topic and t not in semantic_given
                            and any(k in t for k in ("color", "rgb", "image"))]
        self.color_topic = pick(color_topic, DEFAULT_TOPICS.color, color_candidates, "color")
        if self.color_topic is None and require_color:
            raise DatasetError(f"bag '{path}': no color image topic found among {images}; pass color_topic or require_color=False")
        infos = sorted(t for t, m in available.items() if m == CAMERA_INFO)
        self.camera_info_topic = pick(camera_info_topic, DEFAULT_TOPICS.camera_info, infos, "camera info")
        if self.camera_info_topic is None:
            raise DatasetError(f"bag '{path}' has no sensor_msgs/CameraInfo topic (found {infos}); intrinsics are needed")
        poses = sorted(t for t, m in available.items() if m in POSE_TYPES)
        self.tf_topics = [t for t in ("/tf", "/tf_static") if available.get(t) == TF]
        if pose_source == "tf":
            self.pose_topic = None
        else:
            self.pose_topic = pick(pose_topic, DEFAULT_TOPICS.pose, poses, "poses")
        if pose_source == "topic" and self.pose_topic is None:
            raise DatasetError(f"bag '{path}': no pose topic found (pose types: {sorted(poses)}); pass pose_topic")
        if self.pose_topic is None and not self.tf_topics:
            raise DatasetError(f"bag '{path}' has no poses: no PoseStamped/Odometry topic and no /tf")

    def _open(self):
        from rosbags.rosbag2 import Reader

        try:
            reader = Reader(self.path)
            reader.open()
        except Exception as error:  # rosbags raises several types for damaged bags
            raise DatasetError(f"cannot open bag '{self.path}': {error}") from error
        return reader

    def topics(self) -> dict[str, str]:
        """Topic name -> message type of every connection in the bag."""
        reader = self._open()
        try:
            return {c.topic: c.msgtype for c in reader.connections}
        finally:
            reader.close()

    def message_count(self, topic: str | None) -> int | None:
        """How many messages the bag holds on ``topic`` (from its index; None when unknown)."""
        if topic is None:
            return None
        reader = self._open()
        try:
            counts = [c.msgcount for c in reader.connections if c.topic == topic]
        finally:
            reader.close()
        return sum(counts) if counts and all(n is not None for n in counts) else None

    def _check_image(self, sample: _Sample, topic: str) -> None:
        """Refuse an image whose encoding does not suit its role or whose size is inconsistent."""
        roles = {self.depth_topic: ("depth", DEPTH_ENCODINGS), self.color_topic: ("color", COLOR_ENCODINGS), self.labels_topic: ("labels", LABEL_ENCODINGS)}
        if topic not in roles:
            return
        role, encodings = roles[topic]
        msg = sample.msg
        if msg.encoding not in encodings:
            raise DatasetError(
                f"bag '{self.path}' topic {topic} message stamped {sample.stamp}: {role} encoding '{msg.encoding}' "
                f"not supported; expected one of {list(encodings)}"
            )
        if msg.step * msg.height != len(msg.data):
            raise DatasetError(
                f"bag '{self.path}' topic {topic} message stamped {sample.stamp}: data has {len(msg.data)} bytes, "
                f"expected step * height = {msg.step} * {msg.height}"
            )

    def _decode_image(self, sample: _Sample, topic: str):
        msg = sample.msg
        try:
            return decode_image(msg.height, msg.width, msg.encoding, bool(msg.is_bigendian), msg.step, msg.data), msg.encoding
        except InvalidInput as error:
            raise DatasetError(f"bag '{self.path}' topic {topic} message stamped {sample.stamp}: {error}") from error

    def __iter__(self):
        reader = self._open()
        semantic_topics = self._semantic_topics()
        wanted = {self.depth_topic, self.color_topic, *semantic_topics.values(), self.camera_info_topic, self.pose_topic,
                  *self.tf_topics} - {None}
        connections = [c for c in reader.connections if c.topic in wanted]
        pending: deque[_Sample] = deque()
        color: deque[_Sample] = deque(maxlen=200)
        labels = {role: deque(maxlen=200) for role in semantic_topics}  # role -> samples
        by_topic = {topic: role for role, topic in semantic_topics.items()}
        info: list[_Sample] = []
        track = _PoseTrack()
        tf = _TfTree()
        try:
            messages = reader.messages(connections=connections)
            while True:
                try:
                    connection, log_time, raw = next(messages)
                except StopIteration:
                    break
                except Exception as error:
                    raise DatasetError(f"bag '{self.path}' is damaged or truncated: {error}") from error
                try:
                    msg = self._store.deserialize_cdr(raw, connection.msgtype)
                except Exception as error:
                    raise DatasetError(
                        f"bag '{self.path}' topic {connection.topic}: message at {log_time} ns cannot be decoded as {connection.msgtype}: {error}"
                    ) from error
                topic = connection.topic
                if topic in self.tf_topics:
                    try:
                        tf.add(msg, static=topic == "/tf_static", name=f"bag '{self.path}' {topic}")
                    except InvalidInput as error:
                        raise DatasetError(str(error)) from error
                    now = log_time
                elif topic == self.pose_topic:
                    pose = msg.pose.pose if hasattr(msg.pose, "pose") else msg.pose
                    p, q = pose.position, pose.orientation
                    try:
                        T = matrix_from_quaternion([p.x, p.y, p.z], [q.x, q.y, q.z, q.w], name=f"bag '{self.path}' {topic}")
                    except InvalidInput as error:
                        raise DatasetError(str(error)) from error
                    self._pose_frames = (msg.header.frame_id.lstrip("/"),
                                         getattr(msg, "child_frame_id", "") or self.pose_child_frame)
                    track.add(_stamp(msg.header), T)
                    now = _stamp(msg.header)
                else:
                    sample = _Sample(_stamp(msg.header), msg)
                    now = sample.stamp
                    self._check_image(sample, topic)
                    if topic == self.depth_topic:
                        pending.append(sample)
                    elif topic == self.color_topic:
                        color.append(sample)
                    elif topic in by_topic:
                        labels[by_topic[topic]].append(sample)
                    elif topic == self.camera_info_topic:
                        info.append(sample)
                yield from self._emit(pending, color, labels, info, track, tf, now, flush=False)
            yield from self._emit(pending, color, labels, info, track, tf, None, flush=True)
        finally:
            reader.close()

    def _semantic_topics(self) -> dict[str, str]:
        """Role ('labels', 'confidence', 'probabilities', 'instances') -> topic of the 2D semantics read."""
        roles = {"labels": self.labels_topic, "confidence": self.label_confidence_topic,
                 "probabilities": self.label_probabilities_topic, "instances": self.instances_topic}
        return {role: topic for role, topic in roles.items() if topic}

    @staticmethod
    def _nearest(buffer: deque, stamp: int) -> _Sample | None:
        best = None
        for sample in buffer:
            if best is None or abs(sample.stamp - stamp) < abs(best.stamp - stamp):
                best = sample
        return best

    def _camera_pose(self, T_frame_posed: np.ndarray, tf: _TfTree, camera: str) -> np.ndarray:
        """T_world_camera of a pose-topic pose (see the class docstring)."""
        fixed = StaticTransforms()
        for child, (parent, T) in tf.static.items():
            fixed.add(parent, child, T)
        resolver = CameraPoseResolver(self.world_frame, fixed.lookup, self.camera_in_pose_frame)
        frame_id, posed = self._pose_frames
        return resolver.camera_pose(T_frame_posed, frame_id, posed, camera)

    def _pose_ready(self, track: _PoseTrack, tf: _TfTree, camera: str, stamp: int) -> bool:
        if self.pose_topic is not None:
            return track.covers(stamp)
        return tf.covers(self.world_frame, camera, stamp)

    def _emit(self, pending, color, labels, info, track, tf, now, flush: bool):
        wait_ns = max(self.max_sync_ns, 100_000_000)
        while pending:
            depth = pending[0]
            camera = self.camera_frame or depth.msg.header.frame_id.lstrip("/")
            horizon = flush or (now is not None and now > depth.stamp + wait_ns)
            c = self._nearest(color, depth.stamp) if self.color_topic else None
            c_ok = c is not None and abs(c.stamp - depth.stamp) <= self.max_sync_ns
            semantics = {role: self._nearest(buffer, depth.stamp) for role, buffer in labels.items()}
            semantics = {role: sample for role, sample in semantics.items()
                         if sample is not None and abs(sample.stamp - depth.stamp) <= self.max_sync_ns}
            l_ok = len(semantics) == len(labels)
            ready = (c_ok or not self.color_topic) and l_ok and self._pose_ready(track, tf, camera, depth.stamp)
            if not ready and not horizon:
                return
            pending.popleft()
            if self.color_topic and not c_ok and self.require_color:
                self.skipped["no color image within max_sync_ns"] += 1
                continue
            if self.pose_topic is not None:
                T = track.at(depth.stamp, self.max_pose_gap_ns)
                if T is not None:
                    try:
                        T = self._camera_pose(T, tf, camera)
                    except TransformUnavailable as error:
                        self.skipped[str(error)] += 1
                        continue
            else:
                T = tf.lookup(self.world_frame, camera, depth.stamp, self.max_pose_gap_ns)
            if T is None:
                self.skipped["no pose at the depth stamp"] += 1
                continue
            infos = [s for s in info if s.stamp <= depth.stamp] or info
            if not infos:
                self.skipped["no camera_info yet"] += 1
                continue
            yield self._frame(depth, c if c_ok else None, semantics if l_ok else {}, infos[-1], T, camera)

    def _frame(self, depth: _Sample, color: _Sample | None, semantics: dict, info: _Sample, T: np.ndarray, camera: str) -> Frame:
        image, encoding = self._decode_image(depth, self.depth_topic)
        try:
            metres = depth_to_metres(image, encoding, self.depth_scale)
        except InvalidInput as error:
            raise DatasetError(f"bag '{self.path}' topic {self.depth_topic} stamped {depth.stamp}: {error}") from error
        m = info.msg
        try:
            K = CameraIntrinsics.from_camera_info(m.width, m.height, m.k, m.d, m.distortion_model)
        except InvalidInput as error:
            raise DatasetError(f"bag '{self.path}' topic {self.camera_info_topic}: {error}") from error
        if metres.shape != K.shape:
            raise DatasetError(
                f"bag '{self.path}': depth on {self.depth_topic} is {metres.shape[1]}x{metres.shape[0]} but "
                f"{self.camera_info_topic} says {K.width}x{K.height}"
            )
        rgb = None
        if color is not None:
            image, encoding = self._decode_image(color, self.color_topic)
            try:
                rgb = color_to_rgb(image, encoding)
            except InvalidInput as error:
                raise DatasetError(f"bag '{self.path}' topic {self.color_topic} stamped {color.stamp}: {error}") from error
            if rgb.shape[:2] != K.shape:
                raise DatasetError(f"bag '{self.path}': color on {self.color_topic} is {rgb.shape[1]}x{rgb.shape[0]}, depth is {K.width}x{K.height}")
        ids = confidence = probabilities = None
        labels = semantics.get("labels")
        if labels is not None:
            image, encoding = self._decode_image(labels, self.labels_topic)
            try:
                ids = labels_to_ids(image, encoding)
            except InvalidInput as error:
                raise DatasetError(f"bag '{self.path}' topic {self.labels_topic} stamped {labels.stamp}: {error}") from error
            if ids.shape != K.shape:
                raise DatasetError(f"bag '{self.path}': labels on {self.labels_topic} are {ids.shape[1]}x{ids.shape[0]}, depth is {K.width}x{K.height}")
        for role, topic in (("confidence", self.label_confidence_topic), ("probabilities", self.label_probabilities_topic)):
            sample = semantics.get(role)
            if sample is None:
                continue
            image, encoding = self._decode_image(sample, topic)
            try:
                if role == "confidence":
                    confidence = confidence_from_image(image, encoding, K.shape)
                else:
                    probabilities = probabilities_from_image(image, encoding, self.num_classes, K.shape,
                                                             self.probabilities_layout)
            except InvalidInput as error:
                raise DatasetError(f"bag '{self.path}' topic {topic} stamped {sample.stamp}: {error}") from error
        instance_ids = None
        if semantics.get("instances") is not None:
            sample = semantics["instances"]
            image, encoding = self._decode_image(sample, self.instances_topic)
            try:
                instance_ids = labels_to_ids(image, encoding).astype(np.int32)
            except InvalidInput as error:
                raise DatasetError(f"bag '{self.path}' topic {self.instances_topic} stamped {sample.stamp}: {error}") from error
        return Frame(depth=metres, intrinsics=K, T_world_cam=T, rgb=rgb, labels=ids, label_confidence=confidence,
                     label_probs=probabilities, stamp_ns=depth.stamp, frame_id=camera, instance_ids=instance_ids)


def read_bag(path: str | Path, **options) -> list[Frame]:
    """All frames of a bag as a list (see ``RosbagReader`` for the options)."""
    return list(RosbagReader(path, **options))


__all__ = ["RosbagReader", "read_bag"]
