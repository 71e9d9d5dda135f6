"""ssr_ros: online semantic scene reconstruction (fusion + self-supervised completion) for ROS 2.

The core (``geometry``, ``map``, ``completion``, ``data``, ``evaluation``) is plain PyTorch /
NumPy and never imports rclpy; ``ssr_ros.ros`` is the thin ROS 2 layer and ``ssr_ros.cli``
the ``ssr`` command.

The ROS interfaces generated from ``msg/`` and ``srv/`` (``ssr_ros.msg``, ``ssr_ros.srv``)
sit beside this file in a ROS 2 workspace install. In the pip route they are generated into
``<venv>/lib/ssr_ros_interfaces/ssr_ros`` (kept off ``sys.path`` so they never shadow this
package); extending ``__path__`` makes ``import ssr_ros.msg`` find them in either layout.
"""

import sys
from pathlib import Path
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
_PIP_ROUTE_INTERFACES = Path(sys.prefix) / "lib" / "ssr_ros_interfaces" / "ssr_ros"
if _PIP_ROUTE_INTERFACES.is_dir() and str(_PIP_ROUTE_INTERFACES) not in __path__:
    __path__.append(str(_PIP_ROUTE_INTERFACES))

__version__ = "0.1.0"
