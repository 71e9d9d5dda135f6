"""A separate ROS 2 process that publishes or counts a stream of camera-sized images.

``python image_stream_probe.py pub|sub WIDTH HEIGHT COUNT RATE TOPIC``: ``pub`` waits for a
subscriber and publishes COUNT rgb8 images at RATE Hz with sensor-data QoS (stamp.sec = index);
``sub`` prints ``ready``, counts the images that arrive whole and prints ``received N`` after the
last one or a timeout. The DDS transports are whatever the environment selects (the tests pass
the profile through it).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image


def main() -> None:
    role, width, height, count, rate, topic = sys.argv[1], *map(int, sys.argv[2:5]), float(sys.argv[5]), sys.argv[6]
    rclpy.init()
    node = rclpy.create_node(f"image_stream_{role}")
    if role == "sub":
        received = []

        def on_image(msg: Image) -> None:
            if len(msg.data) == width * height * 3:
                received.append(msg.header.stamp.sec)

        node.create_subscription(Image, topic, on_image, qos_profile_sensor_data)
        print("ready", flush=True)
        deadline = time.monotonic() + count / rate + 30.0
        while time.monotonic() < deadline and not (received and received[-1] == count - 1):
            rclpy.spin_once(node, timeout_sec=0.1)
        print(f"received {len(received)}", flush=True)
    else:
        publisher = node.create_publisher(Image, topic, qos_profile_sensor_data)
        msg = Image(height=height, width=width, encoding="rgb8", step=3 * width)
        msg.data = np.random.default_rng(0).integers(0, 255, height * width * 3, dtype=np.uint8).tobytes()
        deadline = time.monotonic() + 30.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        start = time.perf_counter()
        for index in range(count):
            while time.perf_counter() < start + index / rate:
                time.sleep(0.0005)
            msg.header.stamp.sec = index
            publisher.publish(msg)
        time.sleep(1.0)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
