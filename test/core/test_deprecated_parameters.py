"""Old parameter names are still read for one release, with a warning that names the new one."""

import pytest

from ssr_ros.config import read_parameter_file, rename_deprecated


def test_an_old_name_sets_the_new_one_and_warns(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("ssr_mapper:\n  ros__parameters:\n    occupancy_max_z: 1.2\n    map.voxel_size: 0.04\n")
    values = read_parameter_file(path)
    assert values["planning"]["max_height"] == 1.2 and values["map"]["voxel_size"] == 0.04
    assert "occupancy_max_z" not in values
    assert "'occupancy_max_z' is deprecated; use 'planning.max_height'" in capsys.readouterr().err


def test_the_new_name_wins_when_both_are_given():
    values, warnings = rename_deprecated({"occupancy_min_z": 0.3, "planning": {"min_height": 0.2}})
    assert values == {"planning": {"min_height": 0.2}}
    assert "ignored" in warnings[0]


@pytest.mark.parametrize("old", ["occupancy_include_predicted", "occupancy_min_confidence"])
def test_every_old_occupancy_name_has_a_new_home(old):
    values, warnings = rename_deprecated({old: 1})
    assert len(warnings) == 1 and next(iter(values)).startswith("planning.")
