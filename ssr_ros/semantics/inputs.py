"""The forms 2D semantics come in, decoded into what a ``Frame`` carries.

| form | image encodings | Frame fields |
| --- | --- | --- |
| label ids | mono8, mono16, 8UC1, 16UC1 | ``labels`` |
| label ids + confidence | ids as above; confidence 32FC1 (0..1), mono8 / 8UC1 (0..255) or mono16 / 16UC1 (0..65535) | ``labels``, ``label_confidence`` |
| per-class probabilities, pixel-major | 32FC<N> (0..1) or 8UC<N> (0..255), N = the taxonomy's classes | ``label_probs`` (H, W, N) |
| per-class probabilities, class-major | one channel (32FC1, 8UC1 / mono8) holding N planes stacked: height = N * H | ``label_probs`` (H, W, N) view of (N, H, W) |

Class-major is how segmentation networks write their output (N, H, W); it travels as one
image of N stacked planes so that it keeps a header for synchronisation. Every function
checks the encoding, channel count and size and raises ``UnsupportedEncoding`` or
``InconsistentMessage`` naming what was expected: the node drops such a frame (counted by
reason) and the map stays unchanged. Probabilities are not copied or converted: the map's
kernels read float32 or uint8 in either layout in place.
"""

from __future__ import annotations

import numpy as np

from ssr_ros.errors import InconsistentMessage, UnsupportedEncoding

CONFIDENCE_ENCODINGS = ("32FC1", "mono8", "8UC1", "mono16", "16UC1")
PROBABILITY_LAYOUTS = ("hwc", "chw")
"""'hwc': one pixel's N class values are adjacent (32FC<N> / 8UC<N>); 'chw': class-major planes."""


def confidence_from_image(image: np.ndarray, encoding: str, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 in [0, 1] from a decoded confidence image.

    32FC1 must hold finite values in [0, 1]; 8-bit images are divided by 255, 16-bit by 65535.
    ``shape``: the depth image's (H, W).
    """
    if encoding not in CONFIDENCE_ENCODINGS:
        raise UnsupportedEncoding(
            f"confidence encoding '{encoding}' not supported; expected one of {list(CONFIDENCE_ENCODINGS)}"
        )
    image = np.asarray(image)
    _check_size(image.shape[:2], shape, "confidence image")
    if image.ndim != 2:
        raise InconsistentMessage(f"confidence image must have one channel, got shape {image.shape}")
    if encoding == "32FC1":
        finite = np.isfinite(image)
        if not finite.all() or image.min(initial=0.0) < 0 or image.max(initial=0.0) > 1:
            bad = image[~finite] if not finite.all() else image[(image < 0) | (image > 1)]
            raise InconsistentMessage(f"32FC1 confidence must lie in [0, 1]; found {bad.flat[0]!r}")
        return image.astype(np.float32, copy=False)
    scale = 255.0 if image.dtype == np.uint8 else 65535.0
    return (image.astype(np.float32) / np.float32(scale)).astype(np.float32)


def probabilities_from_image(image: np.ndarray, encoding: str, num_classes: int, shape: tuple[int, int],
                             layout: str = "hwc") -> np.ndarray:
    """(H, W, num_classes) float32 or uint8 probabilities from a decoded image (a view, no copy).

    layout 'hwc': encoding 32FC<N> or 8UC<N> with N == num_classes ((H, W, N) decoded image);
    'chw': a one-channel 32FC1 / 8UC1 / mono8 image of num_classes * H rows (class-major
    planes). ``shape``: the depth image's (H, W).
    """
    if layout not in PROBABILITY_LAYOUTS:
        raise UnsupportedEncoding(f"probability layout '{layout}' not supported; expected one of {list(PROBABILITY_LAYOUTS)}")
    image = np.asarray(image)
    height, width = shape
    if layout == "hwc":
        if not (encoding.startswith("32FC") or encoding.startswith("8UC")):
            raise UnsupportedEncoding(
                f"probability image encoding '{encoding}' not supported; expected 32FC{num_classes} or 8UC{num_classes}"
            )
        channels = 1 if image.ndim == 2 else image.shape[2]
        if channels != num_classes:
            raise InconsistentMessage(
                f"probability image has {channels} channels ({encoding}) but the taxonomy has {num_classes} classes"
            )
        _check_size(image.shape[:2], shape, "probability image")
        return image if image.ndim == 3 else image[..., None]
    if encoding not in ("32FC1", "8UC1", "mono8"):
        raise UnsupportedEncoding(
            f"class-major probability encoding '{encoding}' not supported; expected 32FC1, 8UC1 or mono8 "
            f"holding {num_classes} stacked planes"
        )
    if image.ndim != 2 or image.shape[1] != width or image.shape[0] % height:
        raise InconsistentMessage(
            f"class-major probabilities are {image.shape[1] if image.ndim > 1 else '?'}x{image.shape[0]}; expected "
            f"{width}x({num_classes} * {height}) for {num_classes} planes of the {width}x{height} depth image"
        )
    planes = image.shape[0] // height
    if planes != num_classes:
        raise InconsistentMessage(
            f"class-major probabilities hold {planes} planes of {width}x{height} but the taxonomy has {num_classes} classes"
        )
    return np.moveaxis(image.reshape(num_classes, height, width), 0, -1)


def probabilities_from_array(array: np.ndarray, num_classes: int, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, num_classes) float32 / uint8 view of a (H, W, N) or class-major (N, H, W) array
    (a ``.npy`` file a segmenter wrote); the layout is told apart by where N and (H, W) are."""
    array = np.asarray(array)
    if array.dtype not in (np.float32, np.uint8):
        if not np.issubdtype(array.dtype, np.floating):
            raise UnsupportedEncoding(f"probabilities must be float or uint8, got {array.dtype}")
        array = array.astype(np.float32)
    if array.ndim == 4 and array.shape[0] == 1:  # (1, N, H, W) straight from a network
        array = array[0]
    if array.ndim == 3 and array.shape[:2] == tuple(shape):
        layout_classes = array.shape[2]
        result = array
    elif array.ndim == 3 and array.shape[1:] == tuple(shape):
        layout_classes = array.shape[0]
        result = np.moveaxis(array, 0, -1)
    else:
        raise InconsistentMessage(
            f"probabilities of shape {array.shape} fit neither (H, W, N) nor (N, H, W) for the "
            f"{shape[1]}x{shape[0]} depth image"
        )
    if layout_classes != num_classes:
        raise InconsistentMessage(f"probabilities have {layout_classes} classes but the taxonomy has {num_classes}")
    return result


def _check_size(got: tuple[int, ...], shape: tuple[int, int], what: str) -> None:
    if tuple(got) != tuple(shape):
        raise InconsistentMessage(f"{what} is {got[1]}x{got[0]} but the depth image is {shape[1]}x{shape[0]}")
