"""The point-splat renderer paints several layers from one set of surface samples."""

import numpy as np

from ssr_ros.geometry import CameraIntrinsics
from ssr_ros.render import BACKGROUND_RGB, render_mesh, render_mesh_layers


def two_squares():
    """A red square 2 m in front of the camera and a green one 3 m away, half hidden behind it."""
    square = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
    vertices = np.concatenate([square + [0.0, 0.0, 2.0], square * 2 + [1.0, 0.0, 3.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    red, green = [255, 0, 0], [0, 255, 0]
    colors = np.array([red] * 4 + [green] * 4, dtype=np.uint8)
    return vertices, faces, colors


def test_layers_equal_single_renders_and_the_nearer_surface_wins():
    vertices, faces, colors = two_squares()
    intrinsics = CameraIntrinsics(60.0, 60.0, 39.5, 29.5, 80, 60)
    ids = np.repeat(np.array([[1, 0, 1], [2, 0, 1]], dtype=np.uint8), 4, axis=0)
    layers = render_mesh_layers(vertices, faces, {"color": (colors, False, True), "ids": (ids, False, False)},
                                intrinsics, np.eye(4))
    assert np.array_equal(layers["color"], render_mesh(vertices, faces, colors, intrinsics, np.eye(4), shade=False))
    centre = layers["color"][30, 40]
    assert centre.tolist() == [255, 0, 0]                          # the near square hides the far one
    assert layers["color"][30, 75].tolist() == [0, 255, 0]          # the far one shows beside it
    assert layers["color"][2, 2].tolist() == list(BACKGROUND_RGB)    # nothing there
    assert layers["ids"][30, 40, 0] == 1 and layers["ids"][30, 75, 0] == 2
