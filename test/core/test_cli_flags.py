"""Flags of ssr reconstruct named as the parameters they set; old spellings still work, with a warning."""

import pytest

from ssr_ros.cli.main import build_parser
from ssr_ros.cli.reconstruct_command import pipeline_config_from_args


def parse(*flags):
    return build_parser().parse_args(["reconstruct", "in", "--out", "out", *flags])


@pytest.mark.parametrize("old, new, dest, value", [
    ("--model", "--weights", "weights", "w.pt"),
    ("--world-frame", "--map-frame", "map_frame", "odom"),
])
def test_an_old_spelling_sets_what_the_new_one_sets_and_warns(capsys, old, new, dest, value):
    assert getattr(parse(old, value), dest) == getattr(parse(new, value), dest) == value
    assert f"{old} is deprecated" in capsys.readouterr().err


def test_truncation_in_metres_becomes_voxels(capsys):
    old = pipeline_config_from_args(parse("--truncation", "0.15", "--voxel-size", "0.05"))[0]
    new = pipeline_config_from_args(parse("--truncation-voxels", "3", "--voxel-size", "0.05"))[0]
    assert old.map.truncation_voxels == pytest.approx(new.map.truncation_voxels) == pytest.approx(3.0)
    assert "--truncation is deprecated" in capsys.readouterr().err


def test_weights_flag_sets_completion_weights():
    config, _ = pipeline_config_from_args(parse("--weights", "w.pt"))
    assert config.completion.weights == "w.pt" and config.completion.type == "ssr_unet"


def test_the_camera_extrinsic_flag_and_the_node_yaml_reach_the_reader(tmp_path):
    from ssr_ros.cli.reconstruct_command import camera_extrinsic

    assert camera_extrinsic([0, 0, 0, 0, 0, 0, 1]) is None  # identity: /tf_static decides
    T = camera_extrinsic([0.1, 0.2, 0.3, 0, 0, 0, 1])
    assert T[:3, 3].tolist() == pytest.approx([0.1, 0.2, 0.3])
    yaml = tmp_path / "p.yaml"
    yaml.write_text("ssr_mapper:\n  ros__parameters:\n    map_frame: odom\n    pose_child_frame: base_link\n")
    args = parse("--config", str(yaml))
    pipeline_config_from_args(args)
    assert (args.map_frame, args.pose_child_frame) == ("odom", "base_link")
