"""Approximate-time synchronisation of several message streams (the message_filters role).

Where ROS's ``message_filters`` is installed the node uses its
``ApproximateTimeSynchronizer``; this class is the tested equivalent for the pip route and
follows the same rule: a set is emitted when every input has a message within ``slop``
seconds of the newest arrival, choosing for each input the message closest in time, and
everything up to the emitted messages is then dropped. Every message that leaves a queue
without being emitted is counted in ``dropped``, a second message with an emitted one's stamp
included. Queues are bounded by
``queue_size``; the oldest message of a full queue is discarded (and counted).

It has no ROS dependency: messages are opaque, stamps are integer nanoseconds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ssr_ros.errors import ConfigError


class ApproximateTimeSync:
    """Match messages of ``num_inputs`` streams by stamp within ``slop_s`` seconds.

    Call ``add(input_index, stamp_ns, message)`` from subscriber callbacks (thread-safe);
    ``callback(*messages)`` receives one message per input, in input order.
    """

    def __init__(self, num_inputs: int, callback: Callable[..., Any], queue_size: int = 10, slop_s: float = 0.02):
        if num_inputs < 1:
            raise ConfigError(f"num_inputs must be >= 1, got {num_inputs}")
        if queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1, got {queue_size}")
        if not slop_s >= 0:
            raise ConfigError(f"slop must be >= 0 seconds, got {slop_s}")
        self._queues: list[deque[tuple[int, Any]]] = [deque() for _ in range(num_inputs)]
        self._callback = callback
        self._queue_size = queue_size
        self._slop_ns = int(round(slop_s * 1e9))
        self._lock = threading.Lock()
        self.dropped = 0
        """Messages discarded unmatched (queue overflow or older than an emitted set)."""

    def add(self, input_index: int, stamp_ns: int, message: Any) -> None:
        with self._lock:
            queue = self._queues[input_index]
            if len(queue) >= self._queue_size:
                queue.popleft()
                self.dropped += 1
            queue.append((int(stamp_ns), message))
            matched = self._match(input_index, int(stamp_ns))
        if matched is not None:
            self._callback(*matched)

    def _match(self, input_index: int, stamp_ns: int) -> Sequence[Any] | None:
        chosen: list[tuple[int, Any]] = []
        for index, queue in enumerate(self._queues):
            if index == input_index:
                chosen.append(queue[-1])
                continue
            if not queue:
                return None
            best = min(queue, key=lambda item: abs(item[0] - stamp_ns))
            if abs(best[0] - stamp_ns) > self._slop_ns:
                return None
            chosen.append(best)
        for queue, item in zip(self._queues, chosen):
            # the emitted message leaves its queue; every other one stamped at or before it is
            # discarded and counted (a second message with the same stamp included)
            kept = [other for other in queue if other is not item and other[0] > item[0]]
            self.dropped += len(queue) - 1 - len(kept)
            queue.clear()
            queue.extend(kept)
        return [message for _, message in chosen]

    def discard_after(self, stamp_ns: int) -> int:
        """Discard (and count) the queued messages stamped after ``stamp_ns``: those of an older
        timeline after the clock jumped back. Returns how many."""
        with self._lock:
            discarded = 0
            for queue in self._queues:
                kept = [item for item in queue if item[0] <= stamp_ns]
                discarded += len(queue) - len(kept)
                queue.clear()
                queue.extend(kept)
            self.dropped += discarded
            return discarded
