"""Turn synchronised sensor messages, the latest CameraInfo and a pose into a core ``Frame``.

Every refusal is a specific exception whose class name the node uses as the drop reason:
UnsupportedEncoding, InconsistentMessage (sizes disagree), InvalidIntrinsics (camera_info
missing or unusable), PoseUnavailable / InvalidPose.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from ssr_ros.errors import InconsistentMessage, InvalidIntrinsics
from ssr_ros.geometry import CameraIntrinsics, Frame
from ssr_ros.ros.conversions.camera_info import camera_info_to_intrinsics
from ssr_ros.ros.conversions.image import (
    check_same_size,
    color_image_to_rgb,
    depth_image_to_metres,
    image_to_numpy,
    label_image_to_ids,
)
from ssr_ros.ros.conversions.time import stamp_to_ns
from ssr_ros.semantics.inputs import confidence_from_image, probabilities_from_image


class FrameAssembler:
    """Builds Frames; ``pose_lookup(frame_id, stamp_ns) -> T_map_cam`` supplies the pose."""

    def __init__(self, pose_lookup: Callable[[str, int], np.ndarray], depth_scale: float = 0.001,
                 ignore_distortion: bool = False, num_classes: int | None = None,
                 probabilities_layout: str = "hwc") -> None:
        self._pose_lookup = pose_lookup
        self._num_classes = num_classes
        self._probabilities_layout = probabilities_layout
        self._depth_scale = depth_scale
        self._ignore_distortion = ignore_distortion
        self._camera_info: CameraInfo | None = None
        self._intrinsics: CameraIntrinsics | None = None
        self._intrinsics_error: Exception | None = None

    def set_camera_info(self, msg: CameraInfo) -> None:
        """Remember the latest CameraInfo; an unusable one is kept as the reason frames drop."""
        self._camera_info = msg
        try:
            self._intrinsics = camera_info_to_intrinsics(msg, self._ignore_distortion)
            self._intrinsics_error = None
        except InvalidIntrinsics as error:
            self._intrinsics = None
            self._intrinsics_error = error

    @property
    def intrinsics(self) -> CameraIntrinsics | None:
        return self._intrinsics

    def assemble(self, depth: Image | None, color: Image | None = None, labels: Image | None = None,
                 confidence: Image | None = None, probabilities: Image | None = None,
                 instances: Image | None = None) -> Frame:
        """A validated Frame; 2D semantics as label ids (+ a confidence image) or per-class
        probabilities (:mod:`ssr_ros.semantics.inputs`); ``instances``: a mono8/mono16 2D
        object instance image.

        Monocular mode passes ``depth=None``: the color image then gives the size, stamp and
        frame, and the Frame's depth is all 0 and *not yet validated* (the pipeline predicts
        the depth and validates the frame).
        """
        reference = depth if depth is not None else color
        if reference is None:
            raise InconsistentMessage("a frame needs a depth image or, in monocular mode, a color image")
        what = "depth image" if depth is not None else "color image"
        if self._intrinsics is None:
            if self._intrinsics_error is not None:
                raise self._intrinsics_error
            raise InvalidIntrinsics("no camera_info received yet")
        intrinsics = self._intrinsics
        if (reference.width, reference.height) != (intrinsics.width, intrinsics.height):
            raise InvalidIntrinsics(
                f"{what} is {reference.width}x{reference.height} but camera_info says "
                f"{intrinsics.width}x{intrinsics.height}"
            )
        shape = (intrinsics.height, intrinsics.width)
        metres = depth_image_to_metres(depth, self._depth_scale) if depth is not None else np.zeros(shape, np.float32)
        rgb = None
        if color is not None:
            if depth is not None:
                check_same_size(depth, color, "color image")
            rgb = color_image_to_rgb(color)
        ids = None
        if labels is not None:
            check_same_size(reference, labels, "label image")
            ids = label_image_to_ids(labels)
        unit_confidence = probs = None
        if confidence is not None:
            if labels is None:
                raise InconsistentMessage("a confidence image came without a label image")
            unit_confidence = confidence_from_image(image_to_numpy(confidence), confidence.encoding, shape)
        if probabilities is not None:
            if self._num_classes is None:
                raise InconsistentMessage("probabilities need the taxonomy's class count")
            probs = probabilities_from_image(image_to_numpy(probabilities), probabilities.encoding,
                                             self._num_classes, shape, self._probabilities_layout)
        instance_ids = None
        if instances is not None:
            check_same_size(reference, instances, "instance image")
            instance_ids = label_image_to_ids(instances).astype(np.int32)
        stamp_ns = stamp_to_ns(reference.header.stamp)
        T_map_cam = self._pose_lookup(reference.header.frame_id, stamp_ns)
        frame = Frame(
            depth=metres, intrinsics=intrinsics, T_world_cam=T_map_cam, rgb=rgb, labels=ids,
            label_confidence=unit_confidence, label_probs=probs, stamp_ns=stamp_ns, frame_id=reference.header.frame_id,
            instance_ids=instance_ids,
        )
        return frame.validate() if depth is not None else frame
