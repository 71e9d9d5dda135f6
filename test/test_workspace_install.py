"""The ROS 2 workspace route: CMake builds the interfaces and installs package, nodes and data.

This is what `colcon build` runs for an ament_cmake package; here it runs against the venv's
ROS 2 wheels, into a temporary prefix, with the Python package installed by CMake too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def install_prefix(tmp_path_factory):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    venv = Path(sys.prefix)
    if not (venv / "share" / "rosidl_default_generators").is_dir():
        pytest.skip("rosidl generators are not installed in this environment (run `make test`)")
    root = tmp_path_factory.mktemp("ws")
    build, prefix = root / "build", root / "install"
    build.mkdir()
    env = {**os.environ, "AMENT_PREFIX_PATH": str(venv)}
    configure = subprocess.run(
        ["cmake", str(REPO), f"-DCMAKE_PREFIX_PATH={venv}", f"-DCMAKE_INSTALL_PREFIX={prefix}",
         f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        cwd=build, env=env, capture_output=True, text=True,
    )
    assert configure.returncode == 0, configure.stdout[-3000:] + configure.stderr[-3000:]
    install = subprocess.run(["make", f"-j{os.cpu_count() or 2}", "install"], cwd=build, env=env,
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return prefix


def test_nodes_and_data_files_are_installed_where_ros2_looks(install_prefix):
    for relative in ["lib/ssr_ros/mapper", "lib/ssr_ros/ssr"]:
        path = install_prefix / relative
        assert path.is_file() and os.access(path, os.X_OK), relative
    share = install_prefix / "share" / "ssr_ros"
    for relative in ["package.xml", "launch/mapping.launch.py", "config/mapping.yaml",
                     "config/classes/scannet20.yaml", "rviz/ssr_ros.rviz", "models/README.md",
                     "msg/SemanticVoxelMap.msg", "srv/SaveMap.srv"]:
        assert (share / relative).is_file(), relative
    assert (install_prefix / "share/ament_index/resource_index/packages/ssr_ros").is_file()


def test_installed_package_imports_with_its_interfaces_from_one_directory(install_prefix):
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = install_prefix / "lib" / version / "site-packages"
    assert (site / "ssr_ros" / "taxonomy.py").is_file() and (site / "ssr_ros" / "msg").is_dir()
    script = (
        "import ssr_ros, ssr_ros.msg, ssr_ros.srv\n"
        "from ssr_ros.taxonomy import ClassTaxonomy\n"
        "from ssr_ros.msg import SemanticVoxelMap\n"
        "print(ssr_ros.__file__)\n"
        "print(ClassTaxonomy.load().num_classes, SemanticVoxelMap.__module__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": f"{install_prefix}:{sys.prefix}",
           "LD_LIBRARY_PATH": f"{install_prefix / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    result = subprocess.run([sys.executable, "-c", script], cwd=install_prefix, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = result.stdout.split("\n")[:2]
    assert first.startswith(str(site)), f"imported {first}, not the installed copy"
    assert second == "21 ssr_ros.msg._semantic_voxel_map"
