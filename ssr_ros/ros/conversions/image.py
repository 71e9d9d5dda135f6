"""sensor_msgs/Image <-> NumPy (the cv_bridge role, without OpenCV).

Supported encodings: 16UC1, 32FC1 (depth), rgb8, bgr8, rgba8, bgra8, mono8 (color),
mono8, mono16 (labels). Row padding (``step``) and ``is_bigendian`` are honoured both ways.
Where cv_bridge is installed the results are identical (checked in the tests).
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from ssr_ros.errors import InconsistentMessage
from ssr_ros.image_encoding import (
    color_to_rgb,
    decode_image,
    depth_to_metres,
    encode_image,
    labels_to_ids,
)
from ssr_ros.ros.conversions.arrays import to_array
from ssr_ros.ros.conversions.time import ns_to_stamp


def image_to_numpy(msg: Image) -> np.ndarray:
    """(H, W) or (H, W, C) native-endian array of an Image, padding removed, data copied."""
    return decode_image(
        int(msg.height), int(msg.width), msg.encoding, bool(msg.is_bigendian), int(msg.step), msg.data
    )


def numpy_to_image(
    image: np.ndarray,
    encoding: str,
    stamp_ns: int = 0,
    frame_id: str = "",
    step: int | None = None,
    is_bigendian: bool = False,
) -> Image:
    """Image message of an array of the encoding's dtype; ``step`` > row size pads rows."""
    height, width, step, data = encode_image(image, encoding, step=step, is_bigendian=is_bigendian)
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width, msg.step = height, width, step
    msg.encoding = encoding
    msg.is_bigendian = int(is_bigendian)
    msg.data = to_array(np.frombuffer(data, dtype=np.uint8), np.uint8)
    return msg


def depth_image_to_metres(msg: Image, depth_scale: float = 0.001) -> np.ndarray:
    """(H, W) float32 metres of a 16UC1 (millimetres by default) or 32FC1 depth image; invalid = 0."""
    return depth_to_metres(image_to_numpy(msg), msg.encoding, depth_scale)


def color_image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an rgb8/bgr8/rgba8/bgra8/mono8 image."""
    return color_to_rgb(image_to_numpy(msg), msg.encoding)


def label_image_to_ids(msg: Image) -> np.ndarray:
    """(H, W) int64 class ids of a mono8/mono16 label image."""
    return labels_to_ids(image_to_numpy(msg), msg.encoding)


def check_same_size(reference: Image, other: Image, what: str) -> None:
    """Raise InconsistentMessage when two images of one frame differ in size."""
    if (reference.width, reference.height) != (other.width, other.height):
        raise InconsistentMessage(
            f"{what} is {other.width}x{other.height} but the depth image is "
            f"{reference.width}x{reference.height}"
        )
