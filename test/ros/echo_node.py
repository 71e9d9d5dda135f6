"""A separate ROS 2 process for DDS round-trip tests.

Subscribes to ``/echo_in/<name>`` and republishes every message unchanged on
``/echo_out/<name>`` for each ``name=package/msg/Type`` argument, and serves the ssr_ros
services under ``/echo/<service>`` by echoing the request into the response. Prints
``ready`` once everything is created; exits when stdin closes.
"""

from __future__ import annotations

import importlib
import sys
import threading

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ssr_ros.srv import LoadMap, ResetMap, SaveMap


def load_type(spec: str):
    package, kind, name = spec.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("ssr_echo")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    keep = []
    for argument in sys.argv[1:]:
        name, spec = argument.split("=")
        msg_type = load_type(spec)
        publisher = node.create_publisher(msg_type, f"/echo_out/{name}", qos)
        keep.append(node.create_subscription(msg_type, f"/echo_in/{name}", publisher.publish, qos))

    def save(request, response):
        response.success = True
        response.message = f"saved to {request.path}"
        response.files = [f"{request.path}/{fmt}" for fmt in request.formats]
        return response

    def load(request, response):
        response.success = False
        response.message = f"no map at {request.path}"
        return response

    def reset(_request, response):
        response.success = True
        response.message = "cleared"
        return response

    keep += [
        node.create_service(SaveMap, "/echo/save_map", save),
        node.create_service(LoadMap, "/echo/load_map", load),
        node.create_service(ResetMap, "/echo/reset_map", reset),
    ]
    print("ready", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), rclpy.shutdown()), daemon=True).start()
    try:
        rclpy.spin(node)
    except Exception:  # noqa: BLE001 - shutdown from the stdin thread ends spin
        pass


if __name__ == "__main__":
    main()
