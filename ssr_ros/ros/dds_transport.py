"""DDS transport settings for camera-sized messages, applied before rclpy starts.

With Fast DDS's built-in transports, best-effort (sensor-data QoS) images of 640x480 and larger
are mostly lost on one host: they do not fit the default shared-memory segment and go out as
UDP fragments that overflow the default socket buffer (measured: 32 of 150 rgb8 images at
30 Hz arrived). ``config/dds/fastdds_camera_images.xml`` sizes the transports for images
while keeping discovery compatible with processes that do not use it.

:func:`apply_transport_profile` points Fast DDS at that file through the environment, so it
must run before the process creates its first DDS participant (before ``rclpy.init``); child
processes inherit it. It leaves everything alone when the user chose a profile already
(``FASTDDS_DEFAULT_PROFILES_FILE`` / ``FASTRTPS_DEFAULT_PROFILES_FILE``), when another
middleware is selected (``RMW_IMPLEMENTATION``), or when ``SSR_ROS_DDS_PROFILE=none``;
``SSR_ROS_DDS_PROFILE=/path/profile.xml`` uses another file.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from ssr_ros.errors import ConfigError
from ssr_ros.package_files import find_package_file

PROFILE_FILE = "dds/fastdds_camera_images.xml"
"""The packaged profile, relative to ``config/``."""

SELECT_VARIABLE = "SSR_ROS_DDS_PROFILE"
"""'none' to leave DDS at its defaults, or the path of a Fast DDS XML profile to use instead."""

FASTDDS_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
"""Fast DDS >= 3 reads the first (and warns that the second is deprecated), Fast DDS 2.x the second."""

FASTDDS_2_DISTROS = ("humble", "iron", "jazzy")
"""ROS 2 distributions whose Fast DDS is 2.x (the pip wheels and later distributions carry 3.x)."""


def packaged_profile() -> Path:
    """The packaged Fast DDS profile (source checkout or ROS install)."""
    path = find_package_file("config", PROFILE_FILE)
    if path is None:
        raise ConfigError(f"the DDS profile config/{PROFILE_FILE} is missing from this ssr_ros installation")
    return path


def apply_transport_profile(environ: MutableMapping[str, str] | None = None) -> str:
    """Select the image-sized Fast DDS profile for this process and its children.

    Returns one line saying what was done (for the log). Raises ``ConfigError`` when
    ``SSR_ROS_DDS_PROFILE`` names a file that does not exist.
    """
    env = os.environ if environ is None else environ
    choice = env.get(SELECT_VARIABLE, "").strip()
    if choice.lower() == "none":
        return f"DDS transports: Fast DDS defaults ({SELECT_VARIABLE}=none)"
    rmw = env.get("RMW_IMPLEMENTATION", "").strip()
    if rmw and "fastrtps" not in rmw:
        return f"DDS transports: left to {rmw}'s own configuration"
    for variable in FASTDDS_VARIABLES:
        if env.get(variable):
            return f"DDS transports: the profile chosen in {variable} ({env[variable]})"
    if choice:
        path = Path(choice).expanduser()
        if not path.is_file():
            raise ConfigError(f"{SELECT_VARIABLE}={choice!r} is not a file; give a Fast DDS XML profile or 'none'")
    else:
        path = packaged_profile()
    variable = FASTDDS_VARIABLES[1] if env.get("ROS_DISTRO", "").strip() in FASTDDS_2_DISTROS else FASTDDS_VARIABLES[0]
    env[variable] = str(path.resolve())
    return f"DDS transports: image-sized profile {path.resolve()}"
