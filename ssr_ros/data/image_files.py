"""Reading and writing the image and text files of RGB-D dataset folders.

Every failure raises ``DatasetError`` naming the file and what is wrong with it; an image file
that is missing or cannot be read as the expected image raises its subclass ``UnreadableFrame``
(one bad frame, which a reconstruction skips and counts by its ``reason``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssr_ros.errors import DatasetError, InvalidPose, UnreadableFrame
from ssr_ros.geometry.pose import validate_pose


def read_color(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a PNG/JPEG file (gray and RGBA images are converted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != "RGB":
                image = image.convert("RGB")
            return np.asarray(image, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise UnreadableFrame(f"color image '{path}' is missing", "missing color image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UnreadableFrame(f"color image '{path}' cannot be read: {error}", "unreadable color image") from error


def read_uint16(path: Path, what: str = "depth image") -> np.ndarray:
    """(H, W) uint16 of a 16-bit (or 8-bit) single-channel PNG."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
                raise UnreadableFrame(f"{what} '{path}' has PIL mode {image.mode}; expected a single-channel 16-bit PNG",
                                      f"unreadable {what}")
            array = np.asarray(image)
    except FileNotFoundError:
        raise UnreadableFrame(f"{what} '{path}' is missing", f"missing {what}") from None
    except UnreadableFrame:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UnreadableFrame(f"{what} '{path}' cannot be read: {error}", f"unreadable {what}") from error
    if array.ndim != 2:
        raise UnreadableFrame(f"{what} '{path}' has shape {array.shape}; expected a single channel", f"unreadable {what}")
    if array.dtype != np.uint16:
        if array.min(initial=0) < 0 or array.max(initial=0) > 65535:
            raise UnreadableFrame(f"{what} '{path}' has values outside 0..65535", f"unreadable {what}")
        array = array.astype(np.uint16)
    return array


def write_png(path: Path, array: np.ndarray) -> None:
    """Write uint8 (gray or RGB) or uint16 (gray) arrays losslessly as PNG."""
    from PIL import Image

    array = np.ascontiguousarray(array)
    if array.dtype == np.uint16:
        if array.ndim != 2:
            raise DatasetError(f"cannot write {array.shape} uint16 array to '{path}'; expected (H, W)")
        image = Image.fromarray(array.astype(np.uint16))  # mode I;16
    elif array.dtype == np.uint8:
        image = Image.fromarray(array)
    else:
        raise DatasetError(f"cannot write {array.dtype} array to PNG '{path}'; expected uint8 or uint16")
    image.save(path)


def read_matrix(path: Path, shape: tuple[int, int], what: str) -> np.ndarray:
    """A whitespace-separated matrix of ``shape`` from a text file."""
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1).reshape(-1)
    except FileNotFoundError:
        raise DatasetError(f"{what} '{path}' is missing") from None
    except (OSError, ValueError) as error:
        raise DatasetError(f"{what} '{path}' cannot be parsed: {error}") from error
    if values.size != shape[0] * shape[1]:
        raise DatasetError(f"{what} '{path}' has {values.size} numbers; expected {shape[0]}x{shape[1]}")
    return values.reshape(shape)


DATASET_ROTATION_TOLERANCE = 1e-2
"""Largest |R^T R - I| entry of a stored rotation that is repaired (to the nearest rotation)
rather than refused: datasets store poses with 6-7 digits (7-Scenes: errors up to 4e-4)."""


def repair_pose(T: np.ndarray, name: str) -> np.ndarray:
    """``T`` with its rotation block replaced by the nearest rotation (SVD) when it is close to
    one but visibly off (beyond float64 round-off); exact rotations stay untouched bit for bit.

    Raises InvalidPose naming ``name`` when the block is farther than
    ``DATASET_ROTATION_TOLERANCE`` from a rotation or the matrix is otherwise broken.
    """
    T = np.array(T, dtype=np.float64)
    if T.shape == (4, 4) and np.all(np.isfinite(T)):
        R = T[:3, :3]
        error = np.max(np.abs(R.T @ R - np.eye(3)))
        if 1e-9 < error <= DATASET_ROTATION_TOLERANCE and np.linalg.det(R) > 0:
            U, _, Vt = np.linalg.svd(R)
            T[:3, :3] = U @ Vt
    return validate_pose(T, name)


def read_pose(path: Path) -> np.ndarray:
    """A 4x4 camera-to-world pose text file; raises DatasetError for missing / broken files.

    Non-finite poses (ScanNet marks lost tracking with -inf) raise ``InvalidPose`` so that
    readers can choose to skip those frames.
    """
    T = read_matrix(path, (4, 4), "pose file")
    if not np.all(np.isfinite(T)):
        raise InvalidPose(f"pose file '{path}' holds a non-finite pose (lost tracking)")
    try:
        return repair_pose(T, f"pose file '{path}'")
    except InvalidPose as error:
        raise DatasetError(str(error)) from error


def resize_to(array: np.ndarray, height: int, width: int, nearest: bool) -> np.ndarray:
    """Resize an image (H, W[, C]) to ``height`` x ``width`` (bilinear, or nearest for labels)."""
    from PIL import Image

    if array.shape[:2] == (height, width):
        return array
    resample = Image.NEAREST if nearest else Image.BILINEAR
    if array.dtype == np.uint8:
        return np.asarray(Image.fromarray(array).resize((width, height), resample))
    image = Image.fromarray(array.astype(np.int32)).resize((width, height), resample)
    return np.asarray(image).astype(array.dtype)
