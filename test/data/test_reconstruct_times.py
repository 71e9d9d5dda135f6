"""Every time ``ssr reconstruct`` prints adds up: the stages sum to the whole run, whose rate is
frames / whole time."""

from __future__ import annotations

import json
import re
import time

import pytest

from ssr_ros.cli.main import main
from ssr_ros.cli.reconstruct_command import format_times
from ssr_ros.process_clock import process_age_s
from ssr_ros.reconstruction import stage_times


def test_stage_times_add_up_with_other():
    wall = stage_times({"setup_s": 1.0, "integrate_s": 5.0, "save_s": 0.5}, whole_s=7.0)
    assert wall["other_s"] == pytest.approx(0.5) and sum(wall.values()) == pytest.approx(7.0)


def test_the_process_age_counts_the_interpreter_start():
    assert 0.0 < process_age_s() < time.monotonic() + 1.0


def test_the_printed_line_adds_up(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["synth", "--seed", "1", "--out", str(run), "--frames", "6", "--width", "64", "--height", "48",
                 "--format", "folder", "--no-gt"]) == 0
    started = time.perf_counter()
    assert main(["reconstruct", str(run / "folder"), "--out", str(tmp_path / "out"), "--no-completion",
                 "--no-progress", "--up", "z"]) == 0
    elapsed = time.perf_counter() - started
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    speed = summary["speed"]
    assert sum(speed["wall_s"].values()) == pytest.approx(speed["whole_s"], rel=1e-6)
    # the whole call, timed from its start: within the call, its stages (start-up included) account for all of it
    assert 0.0 < speed["whole_s"] <= elapsed
    assert speed["wall_s"]["setup_s"] >= 0.0
    assert speed["end_to_end_fps"] == pytest.approx(summary["frames"]["read"] / speed["whole_s"])
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("[reconstruct]") and "end to end" in l)
    assert line.endswith(format_times(summary))
    whole = float(re.search(r"frames in ([\d.]+) s", line).group(1))
    stages = [float(v) for v in re.findall(r"(?:start-up|read \+ fuse|save|previews|other) ([\d.]+) s", line)]
    assert sum(stages) == pytest.approx(whole, abs=0.05 * len(stages) + 0.05)  # rounding to 0.1 s
    assert summary["planning"]["floor"]["source"] in ("map", "fallback")
    assert (tmp_path / "out" / "occupancy.yaml").exists() and (tmp_path / "out" / "esdf.npz").exists()


def test_the_completion_line_says_what_each_stage_added_or_why_not():
    from ssr_ros.cli.reconstruct_command import format_completion

    planes = [{"kind": "floor", "bounding": True}, {"kind": "wall", "bounding": True},
              {"kind": "wall", "bounding": False}]
    summary = {"completion": {"enabled": True, "chunks_completed": 34, "layout": {
        "voxels_written": 0, "reason": "no room: needs a floor and 2 walls facing different ways", "planes": planes}},
        "objects": {"instances": 4, "refined": 1, "voxels_written": 120}}
    line = format_completion(summary)
    assert line == ("completion: network 34 chunk(s); room layout nothing (no room: needs a floor and 2 walls facing "
                    "different ways; found 1 floor, 1 wall); objects 1 of 4 refined, 120 voxels")
    summary["completion"]["layout"].update(voxels_written=900, reason="")
    planes.append({"kind": "wall", "bounding": True})
    assert "room layout 900 voxels (1 floor, 2 walls)" in format_completion(summary)
    summary["completion"]["layout"]["patches"] = [{"class": "door", "along": [1.0, 1.8]},
                                                  {"class": "window"}, {"class": "window"}]
    assert "room layout 900 voxels (1 floor, 2 walls, 1 door, 2 windows)" in format_completion(summary)
    assert format_completion({"completion": {"enabled": False}}) == ""
    summary["completion"].update(chunks_completed=0, withheld="no threshold reaches 85 %")
    assert format_completion(summary).startswith("completion: network withheld (completion.min_confidence runs it); room layout 900")
