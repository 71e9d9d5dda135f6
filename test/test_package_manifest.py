"""package.xml lists exactly what the code uses: every ROS package and Python library imported by
ssr_ros/ or the launch file is declared, and nothing declared goes unused."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PYTHON_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "yaml": "python3-yaml", "PIL": "python3-pil",
               "skimage": "python3-skimage", "tqdm": "python3-tqdm", "torch": "python3-pytorch-pip",
               "rosbags": "python3-rosbags-pip", "plyfile": "python3-plyfile-pip", "open3d": "python3-open3d-pip"}
ROS_IMPORTS = {"rclpy", "rcl_interfaces", "builtin_interfaces", "ament_index_python", "tf2_ros", "message_filters", "launch", "launch_ros"}
USED_OTHERWISE = {
    "rosidl_default_runtime": "the generated interfaces",
    "rosbag2": "`ros2 bag play` in the launch file (storage plugins)", "ros2bag": "`ros2 bag play` in the launch file",
    "rviz2": "the launch file starts it", "ninja-build": "torch.utils.cpp_extension builds the native kernel",
    "builtin_interfaces": "msg/", "std_msgs": "msg/", "geometry_msgs": "msg/",
}
OPTIONAL_IMPORTS = {"trimesh", "onnxruntime"}  # other mesh formats; user-supplied ONNX segmenters (the `onnx` extra); documented as optional


def imported_top_levels() -> set[str]:
    names = set()
    for path in list((REPO / "ssr_ros").rglob("*.py")) + [REPO / "launch" / "mapping.launch.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def declared(tags=("depend", "exec_depend")) -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {element.text.strip() for tag in tags for element in root.iter(tag)}


def needed() -> set[str]:
    imports = imported_top_levels()
    keys = {PYTHON_KEYS[name] for name in imports if name in PYTHON_KEYS}
    keys |= {name for name in imports if name in ROS_IMPORTS or name.endswith(("_msgs", "_srvs"))}
    return keys


def test_every_import_is_declared():
    imports = imported_top_levels()
    import sys

    stdlib = set(sys.stdlib_module_names)
    unknown = sorted(n for n in imports - stdlib - {"ssr_ros"} - OPTIONAL_IMPORTS
                     if n not in PYTHON_KEYS and n not in ROS_IMPORTS and not n.endswith(("_msgs", "_srvs")))
    assert unknown == [], f"imports with no rosdep key known to this test: {unknown}"
    assert sorted(needed() - declared()) == []


def test_nothing_declared_goes_unused():
    assert sorted(declared() - needed() - set(USED_OTHERWISE)) == []


def test_test_only_packages_are_not_runtime_dependencies():
    assert not {"cv_bridge", "tf_transformations"} & declared()
