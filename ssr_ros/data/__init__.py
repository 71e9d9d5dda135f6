"""Data sources and sinks: the synthetic scene generator, dataset readers, rosbag2 I/O.

- ``synthetic``: procedural furnished rooms with exact ground truth (volumes, meshes),
  rendered RGB-D sequences with sensor and 2D-predictor noise (see its docstring);
- ``rosbag_writer``: ``RosbagWriter`` / ``write_bag`` and ``DEFAULT_TOPICS``, the topic names
  generated bags use and the mapping node subscribes to;
- ``rosbag_reader``: ``RosbagReader`` / ``read_bag``: frames from any rosbag2 file (sqlite3,
  mcap), color / labels synced to depth by stamp, poses from a topic or TF;
- ``folders``: ``ScanNetFolder``, ``SevenScenesFolder``, ``TUMFolder``, ``ReplicaFolder``,
  ``open_folder`` and the ScanNet-layout writer;
- ``image_files``: image / pose / matrix files with errors that name the file.

Every reader yields ``ssr_ros.geometry.Frame``.
"""
