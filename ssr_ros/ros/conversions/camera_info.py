"""sensor_msgs/CameraInfo -> CameraIntrinsics."""

from __future__ import annotations

from sensor_msgs.msg import CameraInfo

from ssr_ros.errors import InvalidIntrinsics
from ssr_ros.geometry import CameraIntrinsics


def camera_info_to_intrinsics(msg: CameraInfo, ignore_distortion: bool = False) -> CameraIntrinsics:
    """Pinhole intrinsics of a rectified camera.

    Refused with InvalidIntrinsics: an uncalibrated camera (all-zero K), non-zero distortion
    (unless ``ignore_distortion``), binning or a region of interest (both change the
    meaning of K for the published image, and ssr_ros does not apply them).
    """
    if msg.binning_x > 1 or msg.binning_y > 1:
        raise InvalidIntrinsics(
            f"CameraInfo binning {msg.binning_x}x{msg.binning_y} is not supported; expected 0 or 1"
        )
    roi = msg.roi
    if roi.width or roi.height or roi.x_offset or roi.y_offset:
        if (roi.width, roi.height) != (msg.width, msg.height) or roi.x_offset or roi.y_offset:
            raise InvalidIntrinsics(
                f"CameraInfo region of interest {roi.width}x{roi.height}+{roi.x_offset}+{roi.y_offset} "
                "is not supported; expected the full image"
            )
    return CameraIntrinsics.from_camera_info(
        int(msg.width), int(msg.height), list(msg.k), list(msg.d), msg.distortion_model, ignore_distortion
    )


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, stamp_ns: int = 0, frame_id: str = "") -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera (plumb_bob, zero distortion)."""
    from ssr_ros.ros.conversions.time import ns_to_stamp

    msg = CameraInfo()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.width, msg.height = intrinsics.width, intrinsics.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    K = intrinsics.matrix
    msg.k = K.reshape(-1).tolist()
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    P = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    msg.p = [float(v) for v in P]
    return msg
