"""Previews say "no semantic source" instead of showing an empty class panel."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ssr_ros.geometry import Frame
from ssr_ros.pipeline import MappingPipeline, PipelineConfig
from ssr_ros.preview import write_previews

from box_rooms import orbit_poses, render_box_room
from test_structure import BOXES, INTRINSICS, ROOM


def test_semantic_panel_says_no_semantic_source(tmp_path):
    config = PipelineConfig(device="cpu")
    config.completion.type = "none"
    config.structure.mode = "off"
    pipeline = MappingPipeline(config, model=None)
    for index, pose in enumerate(orbit_poses(ROOM, 4)):
        depth, _ = render_box_room(ROOM, BOXES, pose, INTRINSICS)
        pipeline.integrate(Frame(depth=depth, intrinsics=INTRINSICS, T_world_cam=pose, stamp_ns=index))
    assert pipeline.semantic_source == "none"
    write_previews(pipeline.map, pipeline.taxonomy, tmp_path, method="mesh", width=160, height=120,
                   semantic_source=pipeline.semantic_source)
    panel = np.asarray(Image.open(tmp_path / "preview_semantic_0.png"))
    grey = np.all(panel == 60, axis=-1)
    assert grey.mean() > 0.6 and (panel > 200).any()  # a grey panel with light text (plus the title bar)
    color = np.asarray(Image.open(tmp_path / "preview_color_0.png"))
    assert not np.all(color == 60)
    assert (tmp_path / "previews.png").exists()
