"""The mapper's sensor subscriptions on a node and executor of their own.

rclpy's ``MultiThreadedExecutor`` is written in Python: every message rebuilds its wait set over
all of the node's entities (subscriptions, timers, services, the publishers' event handlers) and
hands the callback to a thread pool. At 640x480 and 30 Hz the mapper takes five messages per
frame (depth, color, labels, camera_info, pose); measured with yappi over DDS, that dispatch
cost more CPU than everything else the node does outside fusion (``benchmarks/RESULTS.md``,
"Where the mapper node's CPU goes").

The inputs therefore live on a small second node in the same process (``<name>_inputs``, no
parameter services) spun by a ``SingleThreadedExecutor`` in a thread of its own, whose wait set
holds those subscriptions alone. (rclpy's C++ ``EventsExecutor``, spun from a thread, starved the
rest of the process here: a publisher in the same script never ran again.) The mapper node keeps its timers,
publishers and services on its own executor, so a slow output or service never delays an input,
as before. Topic names are resolved by the mapper node (its namespace and remappings) and the
second node takes no command-line arguments, so remapping the mapper
(``-r __node:=...`` included) keeps working and nothing is remapped twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class InputSpinner:
    """A node for ``owner``'s input subscriptions, spun in a daemon thread until :meth:`close`."""

    def __init__(self, owner: Node) -> None:
        self._owner = owner
        self.node = rclpy.create_node(f"{owner.get_name()}_inputs", namespace=owner.get_namespace(),
                                      context=owner.context, use_global_arguments=False,
                                      start_parameter_services=False)
        self.executor = SingleThreadedExecutor(context=owner.context)
        self._thread: threading.Thread | None = None

    def subscribe(self, msg_type, topic: str, callback: Callable, qos):
        """A subscription of the inputs node to ``topic`` as the mapper node would resolve it."""
        return self.node.create_subscription(msg_type, self._owner.resolve_topic_name(topic), callback, qos)

    def start(self) -> None:
        """Spin the inputs node (call once its subscriptions exist)."""
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="ssr_inputs", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.node is not None and self._owner.context.ok():
            try:
                self.executor.spin()
                return
            except Exception as error:  # noqa: BLE001 - a failing callback must not end the inputs
                if not self._owner.context.ok() or self.node is None:
                    return
                self._owner.get_logger().error(f"an input callback failed: {error!r}",
                                               throttle_duration_sec=5.0)

    def close(self) -> None:
        """Stop spinning and destroy the inputs node (idempotent)."""
        if self.node is None:
            return
        node, self.node = self.node, None
        try:
            self.executor.shutdown(timeout_sec=2.0)
        except Exception:  # noqa: BLE001 - already shut down with the context
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            node.destroy_node()
        except Exception:  # noqa: BLE001 - the context is gone
            pass
