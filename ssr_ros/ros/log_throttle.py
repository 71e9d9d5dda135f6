"""At most one log line per reason and period, decided before the logger is called.

rclpy's ``throttle_duration_sec`` identifies the call site by inspecting the caller's frame and
source line on every call, throttled or not; under overload (a dropped frame every 33 ms at
30 Hz) that cost lands on the threads that receive the images. :class:`LogThrottle` answers
"log this now?" with a dictionary lookup, per reason rather than per call site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class LogThrottle:
    """``ready(reason)`` is True at most once per ``period_s`` seconds for each reason (thread-safe).

    ``period_s`` 0 lets every call through. ``clock``: seconds, monotonic (for tests).
    """

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = float(period_s)
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def ready(self, reason: Hashable) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self.period_s:
                return False
            self._last[reason] = now
            return True
