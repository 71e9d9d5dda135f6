"""Exceptions of ssr_ros. Every message names the offending value and what was expected."""


class SsrError(Exception):
    """Base class of every error ssr_ros raises on purpose."""


class InvalidInput(SsrError, ValueError):
    """Input data that cannot be used as given (wrong shape, non-finite values, ...)."""


class UnsupportedEncoding(InvalidInput):
    """An image encoding this package does not read or write."""


class InconsistentMessage(InvalidInput):
    """A message whose fields contradict each other (step too small, data length wrong, ...)."""


class InvalidIntrinsics(InvalidInput):
    """Camera intrinsics that are missing, non-finite, non-positive or use unsupported distortion."""


class InvalidPose(InvalidInput):
    """A pose that is not a finite rigid transform."""


class InvalidFrame(InvalidInput):
    """An RGB-D frame that cannot be integrated (sizes disagree, no valid depth, ...)."""


class DepthOutOfRange(InvalidFrame):
    """A depth image whose valid pixels all lie outside the map's [min_depth, max_depth]."""


class ConfigError(SsrError, ValueError):
    """A configuration value outside its allowed range or of the wrong type."""


class MapFileError(SsrError, OSError):
    """A map, mesh or weights file that cannot be read or written."""


class DatasetError(SsrError, OSError):
    """A dataset folder or rosbag2 file that is missing pieces or cannot be parsed."""


class PoseUnavailable(SsrError, LookupError):
    """No camera pose is known for a frame's time stamp (too old, too new, or a gap)."""


class PoseConflict(PoseUnavailable):
    """Two different poses arrived for one stamp, so no frame at that stamp has a known pose."""


class TransformUnavailable(PoseUnavailable):
    """A transform between two frames is needed (a pose's frame to the map frame, or a body frame
    to the camera) but is not known."""



class UnreadableFrame(DatasetError):
    """One frame of a recording whose file is missing, not an image, or of the wrong size.

    ``reason`` is a short phrase to count skipped frames by (e.g. "unreadable depth image").
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
