"""A 2D segmenter run in its own thread beside frame integration (the node's segmenter stage).

The integration thread *offers* each frame; the segmenter takes one when it is idle and its
period (``1 / rate_hz``) has passed since it last started, and the integration thread goes on
with the next frames (geometry and color only). A taken frame comes back from
:meth:`BackgroundSegmenter.finished` with its class probabilities (or the error that stopped
the model), to be integrated then: fusion does not depend on the order of frames, so a frame
integrated a segmentation later than its successors gives the same map.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Segmented:
    """A frame the segmenter took: ``probabilities`` (H, W, N) or None with ``error`` set;
    ``context``: what the caller offered with the frame."""

    frame: Any
    probabilities: np.ndarray | None
    error: Exception | None
    seconds: float
    context: Any = None


class BackgroundSegmenter:
    """Run ``segment(rgb (H, W, 3) uint8) -> (H, W, N) float32`` on at most ``rate_hz`` frames
    per second, one at a time, in a thread of its own."""

    def __init__(self, segment: Callable[[np.ndarray], np.ndarray], rate_hz: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self._segment = segment
        self._period = 1.0 / rate_hz
        self._clock = clock
        self._lock = threading.Lock()
        self._busy = False
        self._last_start = -math.inf
        self._done: queue.Queue[Segmented] = queue.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssr_segmenter")
        self._closed = False

    def offer(self, frame: Any, context: Any = None) -> bool:
        """Take ``frame`` (its ``rgb``) to segment if idle and due; False: integrate it without.
        ``context`` comes back with it."""
        if getattr(frame, "rgb", None) is None:
            return False
        with self._lock:
            now = self._clock()
            if self._closed or self._busy or now - self._last_start < self._period:
                return False
            self._busy = True
            self._last_start = now
        self._executor.submit(self._run, frame, context)
        return True

    def _run(self, frame: Any, context: Any) -> None:
        start = time.perf_counter()
        try:
            result = Segmented(frame, self._segment(frame.rgb), None, 0.0, context)
        except Exception as error:  # noqa: BLE001 - reported with the frame, which is integrated without
            result = Segmented(frame, None, error, 0.0, context)
        result.seconds = time.perf_counter() - start
        self._done.put(result)
        with self._lock:
            self._busy = False

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy

    def finished(self) -> list[Segmented]:
        """The frames segmented since the last call (oldest first)."""
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Finish the frame in progress and stop the thread (frames offered later are refused)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)
