"""Procedural indoor scenes with exact ground truth: the project's own labelled 3D data.

Typical use (training data, evaluation references, the demo)::

    from ssr_ros.data.synthetic import generate_scene, SyntheticSequence, SequenceConfig

    scene = generate_scene(seed=3)                 # furnished room, deterministic by seed
    sequence = SyntheticSequence(scene, SequenceConfig(width=320, height=240))
    for frame in sequence:                         # ssr_ros.geometry.Frame
        ...                                        # depth (noisy, mm-quantised), rgb, labels
    view = sequence.view(0)                        # + exact depth / classes / instances
    gt = scene.gt_volume(voxel_size=0.05)          # GTVolume: sdf, occupied, class_ids, ...
    mesh = scene.gt_mesh()                         # GTMesh: vertices, faces, vertex_class

Modules: ``primitives`` (oriented boxes, SDF), ``materials`` (procedural textures,
shading), ``furniture`` (parametric templates, room types), ``layout`` (``SceneConfig``,
``generate_scene``), ``scene`` (``Scene``), ``renderer`` (``render_view``), ``trajectory``
(``TrajectoryConfig``, handheld / robot paths), ``depth_noise`` and ``label_noise`` (sensor
and 2D-predictor models), ``sequence`` (``SyntheticSequence``), ``ground_truth``
(``GTVolume``, ``GTMesh``, ``visible_voxels``), ``floor`` (``FloorConfig``, ``generate_floor``:
a multi-room floor with corridor and doors, and the ``tour`` trajectory through every room).
"""

from ssr_ros.data.synthetic.depth_noise import DepthNoiseConfig, apply_depth_noise
from ssr_ros.data.synthetic.ground_truth import GTMesh, GTVolume, gt_mesh, gt_volume, visible_voxels
from ssr_ros.data.synthetic.label_noise import LabelNoiseConfig, apply_label_noise
from ssr_ros.data.synthetic.floor import FloorConfig, generate_floor
from ssr_ros.data.synthetic.layout import SceneConfig, generate_scene, simple_scene
from ssr_ros.data.synthetic.renderer import RenderedView, render_view
from ssr_ros.data.synthetic.scene import Scene, SceneObject
from ssr_ros.data.synthetic.sequence import CAMERA_FRAME_ID, SequenceConfig, SyntheticSequence, SyntheticView
from ssr_ros.data.synthetic.trajectory import Trajectory, TrajectoryConfig, generate_trajectory, look_at

__all__ = [
    "CAMERA_FRAME_ID", "DepthNoiseConfig", "FloorConfig", "generate_floor", "GTMesh", "GTVolume", "LabelNoiseConfig", "RenderedView", "Scene",
    "SceneConfig", "SceneObject", "SequenceConfig", "SyntheticSequence", "SyntheticView", "Trajectory",
    "TrajectoryConfig", "apply_depth_noise", "apply_label_noise", "generate_scene", "generate_trajectory",
    "gt_mesh", "gt_volume", "look_at", "render_view", "simple_scene", "visible_voxels",
]
