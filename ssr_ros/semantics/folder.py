"""2D semantics kept in a folder beside a recording, one set of files per frame.

For a frame whose ``frame_id`` is ``NAME`` (7-Scenes ``frame-000000``, ScanNet ``0``, TUM
the depth file's stem, Replica ``frame000000``), ``SemanticsFolder`` looks for

- ``NAME.labels.png``: class ids (8- or 16-bit PNG);
- ``NAME.confidence.png`` (8-bit 0..255 or 16-bit 0..65535) or ``NAME.confidence.npy``
  (float 0..1), with the labels;
- ``NAME.probs.npy``: per-class probabilities, (H, W, N), (N, H, W) or (1, N, H, W), float or
  uint8 (0..255), N = the taxonomy's classes, instead of labels.

A frame without files keeps its own semantics (or none). Files that disagree with the frame
(size, classes, encoding) raise :class:`~ssr_ros.errors.InvalidFrame` naming the file; the
frame is then dropped and the map unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ssr_ros.errors import DatasetError, InconsistentMessage, InvalidFrame, UnsupportedEncoding
from ssr_ros.geometry import Frame
from ssr_ros.semantics.inputs import confidence_from_image, probabilities_from_array


class SemanticsFolder:
    """Adds the semantics in ``root`` to frames by their ``frame_id``."""

    def __init__(self, root: str | Path, num_classes: int) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"semantics folder '{self.root}' does not exist")
        self.num_classes = num_classes
        self.frames_found = 0

    def apply(self, frame: Frame) -> Frame:
        """``frame`` with the semantics of its files (unchanged when it has none)."""
        name = frame.frame_id
        labels_path, probs_path = self.root / f"{name}.labels.png", self.root / f"{name}.probs.npy"
        if not labels_path.exists() and not probs_path.exists():
            return frame
        shape = tuple(np.asarray(frame.depth).shape)
        try:
            if probs_path.exists():
                probs = probabilities_from_array(_load_npy(probs_path), self.num_classes, shape)
                result = dataclasses.replace(frame, labels=None, label_confidence=None, label_probs=probs)
            else:
                labels = _read_png(labels_path)
                if labels.ndim != 2 or labels.shape != shape:
                    raise InconsistentMessage(f"labels are {labels.shape[::-1]}, depth is {shape[::-1]}")
                confidence = None
                for suffix in (".confidence.png", ".confidence.npy"):
                    path = self.root / f"{name}{suffix}"
                    if path.exists():
                        raw = _read_png(path) if suffix.endswith("png") else _load_npy(path).astype(np.float32)
                        encoding = {np.dtype(np.uint8): "mono8", np.dtype(np.uint16): "mono16"}.get(raw.dtype, "32FC1")
                        confidence = confidence_from_image(raw, encoding, shape)
                        break
                result = dataclasses.replace(frame, labels=labels.astype(np.int64), label_confidence=confidence,
                                             label_probs=None)
        except (InconsistentMessage, UnsupportedEncoding) as error:
            raise InvalidFrame(f"semantics of frame '{name}' in '{self.root}': {error}") from error
        self.frames_found += 1
        return result


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image)
    except OSError as error:
        raise InvalidFrame(f"cannot read '{path}': {error}") from error


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InvalidFrame(f"cannot read '{path}': {error}") from error
