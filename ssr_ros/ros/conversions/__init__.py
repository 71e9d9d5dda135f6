"""Conversions between ROS 2 messages and the core's NumPy / geometry types.

Each module handles one message family; every function raises a specific ``SsrError``
subclass (``UnsupportedEncoding``, ``InconsistentMessage``, ``InvalidIntrinsics``,
``InvalidPose``) naming the offending value and what was expected.
"""
