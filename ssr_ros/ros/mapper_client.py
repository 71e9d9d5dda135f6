"""Run the mapper node as a separate process and talk to it: what the demo and the tests use.

``MapperProcess`` starts ``python -m ssr_ros.ros.mapper_node`` with parameter overrides, keeps
the latest diagnostics counters, assembles the incremental mesh, remembers the latest voxel
outputs, and calls the node's services, all over real DDS.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2

from ssr_ros.errors import SsrError
from ssr_ros.msg import SemanticMesh, SemanticVoxelMap
from ssr_ros.ros.conversions.semantic_mesh import MeshAssembler, msg_to_update

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
NODE_NAME = "ssr_mapper"


class MapperProcess:
    """The mapper node in a child process plus a client node in this one (spun in a thread)."""

    OUTPUTS = ("mesh", "voxels", "voxel_map", "occupancy", "occupancy_predicted", "esdf_slice", "esdf_slice_predicted")
    """The node outputs the client can follow (``self.mesh`` / ``self.latest``)."""

    def __init__(self, context, parameters: dict[str, Any] | None = None, client_name: str = "ssr_mapper_client",
                 outputs: tuple[str, ...] | None = None, command: list[str] | None = None):
        """``outputs``: the outputs to subscribe to (None: all of :attr:`OUTPUTS`); the node builds
        only the outputs someone subscribes to. ``command``: what starts the node instead of
        ``python -m ssr_ros.ros.mapper_node`` (e.g. a profiling wrapper); ``--ros-args`` and the
        parameters follow it."""
        outputs = self.OUTPUTS if outputs is None else tuple(outputs)
        unknown = set(outputs) - set(self.OUTPUTS)
        if unknown:
            raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {self.OUTPUTS}")
        args: list[str] = []
        for name, value in (parameters or {}).items():
            if isinstance(value, bool):
                value = str(value).lower()
            args += ["-p", f"{name}:={value}"]
        self.process = subprocess.Popen(
            [*(command or [sys.executable, "-m", "ssr_ros.ros.mapper_node"]), "--ros-args", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        # The node process must not outlive its client, whatever happens to the client.
        self._reaper = weakref.finalize(self, _stop_process, self.process)
        self.log: list[str] = []
        threading.Thread(target=lambda: self.log.extend(self.process.stdout), daemon=True).start()
        self.node = rclpy.create_node(client_name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.diagnostics: dict[str, str] = {}
        self.mesh = MeshAssembler()
        self.latest: dict[str, Any] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        if "mesh" in outputs:
            self.node.create_subscription(SemanticMesh, f"/{NODE_NAME}/mesh", self._on_mesh, QoSProfile(
                depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        for name, msg_type in [("voxels", PointCloud2), ("voxel_map", SemanticVoxelMap), ("occupancy", OccupancyGrid),
                               ("occupancy_predicted", OccupancyGrid), ("esdf_slice", PointCloud2),
                               ("esdf_slice_predicted", PointCloud2)]:
            if name not in outputs:
                continue
            self.node.create_subscription(msg_type, f"/{NODE_NAME}/{name}",
                                          lambda m, n=name: self.latest.__setitem__(n, m), LATCHED)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - context shut down while closing
                return

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(NODE_NAME):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def _on_mesh(self, msg: SemanticMesh) -> None:
        self.mesh.apply(msg_to_update(msg)[0])

    def counter(self, key: str) -> int:
        """An integer diagnostics value (0 until reported)."""
        return int(float(self.diagnostics.get(key, 0)))

    def tail(self, lines: int = 40) -> str:
        return "".join(self.log[-lines:])

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        """Poll ``predicate``; SsrError with the node's last log lines on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SsrError(f"the mapper node exited with code {self.process.returncode}:\n{self.tail()}")
            if predicate():
                return
            time.sleep(0.1)
        raise SsrError(f"timed out waiting for {what}; diagnostics {self.diagnostics}\n{self.tail()}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the node publishes diagnostics (it is up and spinning)."""
        self.wait_for(lambda: bool(self.diagnostics), "the mapper node to start", timeout)

    def wait_idle(self, timeout: float = 300.0) -> None:
        """Until no frame waits for integration and completion has nothing pending, twice in a row."""
        def idle() -> bool:
            return self.counter("frame_queue") == 0 and self.counter("pending_chunks") == 0
        self.wait_for(idle, "the mapper to become idle", timeout)
        time.sleep(1.5)
        self.wait_for(idle, "the mapper to stay idle", timeout)

    def call(self, service_type, name: str, request, timeout: float = 300.0):
        """Call ``/ssr_mapper/<name>`` and return the response."""
        client = self.node.create_client(service_type, f"/{NODE_NAME}/{name}")
        if not client.wait_for_service(timeout_sec=timeout):
            raise SsrError(f"service /{NODE_NAME}/{name} is not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not future.done():
            raise SsrError(f"no response from /{NODE_NAME}/{name} within {timeout} s")
        return future.result()

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=5)
        self._reaper()
        self.executor.shutdown()
        self.node.destroy_node()


def _stop_process(process: subprocess.Popen) -> None:
    """Terminate the node process (SIGTERM, then SIGKILL after 15 s)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
