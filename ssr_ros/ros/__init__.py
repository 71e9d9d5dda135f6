"""The ROS 2 layer: message conversions, nodes, parameters. The only part that imports rclpy."""
