"""Keep an output's share of the node's time bounded, whatever the map's size.

An incremental mesh update re-meshes the blocks changed since the previous one. On a large map
seen at 640x480 / 30 Hz an update takes longer than the update period (measured: 1.6 s of work
every 1 s), so updates ran back to back and took a core from fusion. Blocks that change in
consecutive frames are re-meshed once per update, so spacing updates out costs less work per
frame, not only less often: :class:`BusyLimit` waits after each run in proportion to its length.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class BusyLimit:
    """At most ``fraction`` of the time running: after a run that took ``t`` seconds, :meth:`ready`
    is False for ``t * (1 - fraction) / fraction`` seconds after it ended (1 = always ready).

    ``clock``: seconds, monotonic (for tests). Not thread-safe: one caller (the output's timer).
    """

    def __init__(self, fraction: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"the busy fraction must be in (0, 1], got {fraction}")
        self.fraction = float(fraction)
        self._clock = clock
        self._next = float("-inf")

    def ready(self) -> bool:
        return self._clock() >= self._next

    def ran(self, seconds: float) -> None:
        """A run that took ``seconds`` just ended."""
        self._next = self._clock() + max(0.0, seconds) * (1.0 - self.fraction) / self.fraction
