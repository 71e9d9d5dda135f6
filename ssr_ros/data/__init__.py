"""Data sources and sinks: the synthetic scene generator, dataset readers, rosbag2 I/O."""
