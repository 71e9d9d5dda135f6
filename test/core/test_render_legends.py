"""Pictures: the mesh ray caster agrees with the point splat, and every written image has a title
bar and the legend of what it shows."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "map"), str(Path(__file__).resolve().parents[1] / "planning")]

from ssr_ros.figure import BAR_RGB, PROVENANCE_LEGEND, annotate, class_legend  # noqa: E402
from ssr_ros.render import BACKGROUND_RGB, MeshRenderer, view_intrinsics  # noqa: E402
from ssr_ros.taxonomy import ClassTaxonomy  # noqa: E402


@pytest.fixture(scope="module")
def room_map():
    from room import fused_room

    return fused_room()


def test_the_ray_caster_and_the_point_splat_draw_the_same_surface(room_map):
    pytest.importorskip("open3d")
    from room import camera_poses

    mesh = room_map.mesh()
    layers = {"ids": (np.stack([mesh.labels % 256, mesh.labels // 256, np.ones_like(mesh.labels)], 1).astype(np.uint8),
                      False, False)}
    K = view_intrinsics(160, 120)
    T = camera_poses()[2]
    fast = MeshRenderer(mesh.vertices, mesh.triangles, "raycast").render_layers(layers, K, T)["ids"]
    slow = MeshRenderer(mesh.vertices, mesh.triangles, "splat").render_layers(layers, K, T)["ids"]
    hit_fast, hit_slow = fast[..., 2] == 1, slow[..., 2] == 1
    assert hit_fast.mean() > 0.3
    assert (hit_fast & hit_slow).sum() / (hit_fast | hit_slow).sum() > 0.9
    both = hit_fast & hit_slow
    assert (fast[both, 0] == slow[both, 0]).mean() > 0.97  # the same class at the same pixel


def test_annotate_adds_a_title_bar_and_one_swatch_per_legend_entry():
    image = np.full((120, 200, 3), 30, np.uint8)
    legend = [("floor", (10, 200, 10)), ("chair", (200, 10, 10))]
    out = annotate(image, "semantic classes", legend)
    assert out.shape[1] == 200 and out.shape[0] > 120
    assert tuple(out[1, 1]) == BAR_RGB  # the title bar above
    top = next(t for t in range(out.shape[0] - 119) if np.array_equal(out[t:t + 120], image))
    assert 0 < top < 40  # the image itself, unchanged, below the title
    for _, color in legend:  # each swatch is drawn below the image
        assert np.all(out[top + 120:] == color, axis=-1).any()


def test_the_class_legend_names_the_classes_in_sight_only():
    taxonomy = ClassTaxonomy.load(None)
    names = [name for name, _ in class_legend(np.array([[-1, 2, 2], [2, 5, 5]]), taxonomy)]
    assert names == [taxonomy.classes[2].name, taxonomy.classes[5].name]
    unlabelled = class_legend(np.array([-1, 0]), taxonomy)
    assert len(unlabelled) == 1 and "no class evidence" in unlabelled[0][0]


def test_ssr_render_writes_titled_views_with_a_legend(room_map, tmp_path, capsys):
    from PIL import Image

    from ssr_ros.cli.main import main

    room_map.save(tmp_path / "map.ssrmap")
    assert main(["render", str(tmp_path), "--out", str(tmp_path / "v.png"), "--orbit", "2", "--width", "160",
                 "--height", "120", "--color-by", "provenance"]) == 0
    for name in ("v_000.png", "v_001.png"):
        image = np.asarray(Image.open(tmp_path / name))[..., :3]
        assert image.shape[0] > 120 and image.shape[1] == 160
        assert tuple(image[1, 1]) == BAR_RGB
        for _, color in PROVENANCE_LEGEND:
            assert np.all(image == color, axis=-1).any(), "legend swatch missing"
        assert (np.abs(image.astype(int) - BACKGROUND_RGB).sum(axis=2) > 0).mean() > 0.2
    assert "renderer" in capsys.readouterr().out
    assert main(["render", str(tmp_path), "--out", str(tmp_path / "bare.png"), "--width", "160", "--height", "120",
                 "--no-legend"]) == 0
    assert np.asarray(Image.open(tmp_path / "bare.png")).shape[:2] == (120, 160)


def test_the_synth_preview_titles_its_panels_and_names_the_classes():
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, generate_scene
    from ssr_ros.data.synthetic.preview import preview_image

    scene = generate_scene(seed=3)
    config = SequenceConfig(width=64, height=48)
    config.trajectory.num_frames = 2
    sequence = SyntheticSequence(scene, config)
    image = preview_image(scene, [sequence.view(0)], scene.taxonomy, 64, 48)
    assert tuple(image[1, 1]) == BAR_RGB and image.shape[0] > 2 * 48
    floor = scene.taxonomy.names.index("floor")
    legend_rows = image[-image.shape[0] // 4:]  # the legend under the sheet
    assert np.all(legend_rows == scene.taxonomy.classes[floor].color, axis=-1).any()
