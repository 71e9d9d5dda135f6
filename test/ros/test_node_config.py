"""The node's camera extrinsic: a pose topic that tracks a body frame gives the camera's pose."""

import numpy as np
import pytest

from ssr_ros.errors import ConfigError
from ssr_ros.ros.node_config import NodeConfig

BASE_TO_OPTICAL = [0.1, 0.0, 0.5, -0.5, 0.5, -0.5, 0.5]  # camera 0.5 m up, 0.1 m ahead, looking along base x


def test_the_default_extrinsic_is_identity():
    assert np.array_equal(NodeConfig().camera_extrinsic(), np.eye(4))


def test_a_body_pose_composed_with_the_extrinsic_is_the_optical_frames_pose():
    T_world_base = np.eye(4)
    T_world_base[:3, 3] = [2.0, 1.0, 0.0]
    T_world_camera = T_world_base @ NodeConfig(camera_in_pose_frame=BASE_TO_OPTICAL).camera_extrinsic()
    np.testing.assert_allclose(T_world_camera[:3, 3], [2.1, 1.0, 0.5])
    np.testing.assert_allclose(T_world_camera[:3, 2], [1, 0, 0], atol=1e-12)   # optical z = forward = base x
    np.testing.assert_allclose(T_world_camera[:3, 1], [0, 0, -1], atol=1e-12)  # optical y = down


@pytest.mark.parametrize("values, match", [([1, 2, 3], "7 numbers"), ([0, 0, 0, 0, 0, 0, 0], "quaternion"),
                                           ([0, 0, float("nan"), 0, 0, 0, 1], "not finite")])
def test_a_bad_extrinsic_is_a_config_error(values, match):
    with pytest.raises(ConfigError, match=match):
        NodeConfig(camera_in_pose_frame=values).validate()
