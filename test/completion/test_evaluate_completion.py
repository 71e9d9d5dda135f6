"""``ssr evaluate-completion``: one table of fusion only, Poisson, the network and the room layout."""

from __future__ import annotations

import json

import pytest
import torch

from ssr_ros.cli.main import main
from ssr_ros.completion.contract import ModelContract

TINY_CONTRACT = ModelContract(voxel_size=0.05, truncation=0.2, chunk_size=32, num_classes=21)


@pytest.mark.slow
def test_evaluate_completion_puts_every_map_in_one_table(tmp_path, capsys):
    from ssr_ros.completion.network import SSRUNetConfig, build_ssr_unet
    from ssr_ros.completion.weights import save_model

    save_model(build_ssr_unet(SSRUNetConfig(base_width=2, max_width=4, levels=2, norm_groups=1)), tmp_path / "tiny.pt",
               contract=TINY_CONTRACT)
    (tmp_path / "eval.yaml").write_text("seeds: [2000]\ngt_points: 20000\nchunk_size: 32\noverlap: 8\n")
    out = tmp_path / "eval.json"
    threads = torch.get_num_threads()
    try:  # one thread: on a busy 2-core machine a second one mostly spins
        assert main(["evaluate-completion", "--config", str(tmp_path / "eval.yaml"), "--weights", str(tmp_path / "tiny.pt"),
                     "--frames", "3", "--width", "40", "--height", "30", "--threads", "1", "--objects", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert "seed 2000" in captured.err  # progress goes to stderr, the table to stdout
    rows = [line for line in captured.out.splitlines() if line.startswith("| ")]
    titles = [row.split("|")[1].strip() for row in rows]
    assert titles[:8] == ["method", "fusion only", "Poisson (of the fused mesh)", "fusion + network",
                          "fusion + room layout", "fusion + room layout + objects", "fusion + network + room layout",
                          "fusion + network + room layout + objects"]
    result = json.loads(out.read_text())
    seed = result["seeds"][0]
    assert seed["frames"] == 3 and seed["observed_unchanged"] and seed["chunks_completed"] > 0
    fusion, poisson, network = (seed["methods"][m] for m in ("fusion", "poisson", "network"))
    assert fusion["predicted_precision"] is None and fusion["unobserved_iou"] == 0.0
    for scores in (fusion, poisson, network):
        assert 0.0 <= scores["fscore"] <= 1.0 and scores["triangles"] > 0
    # the network writes back unobserved voxels only: observed semantics are the fused ones
    assert network["observed_miou"] == fusion["observed_miou"] == poisson["observed_miou"]
    assert network["triangles"] >= fusion["triangles"]
    layout, layout_objects, both, objects = (seed["methods"][m] for m in ("layout", "layout+objects", "network+layout",
                                                                            "network+layout+objects"))
    assert (layout["observed_miou"] == layout_objects["observed_miou"] == both["observed_miou"] == objects["observed_miou"]
            == fusion["observed_miou"])
    for scores in (fusion, poisson, layout, layout_objects, both, objects):  # each class's unobserved IoU; their mean is the mIoU
        per_class = [v for k, v in scores.items() if k.startswith("unobserved_iou_")]
        if scores["unobserved_miou"] is not None:
            assert per_class and all(0.0 <= v <= 1.0 for v in per_class)
            assert abs(sum(per_class) / len(per_class) - scores["unobserved_miou"]) < 1e-9
    assert fusion["unobserved_miou"] == 0.0 and fusion["unobserved_iou_wall"] == 0.0  # nothing labelled there
    for counts in seed["objects"].values():  # per row with objects
        assert counts["refined"] <= counts["instances"]
    assert set(seed["objects"]) == {"layout+objects", "network+layout+objects"}
    assert "reason" in seed["layout"]  # what the layout found (from 3 tiny frames: most likely no room)
    assert set(result["summary"]) == {"fusion", "poisson", "network", "layout", "layout+objects", "network+layout",
                                      "network+layout+objects"}
    assert "| fusion only |" in result["table_markdown"]


def test_no_poisson_and_capture_overrides_reach_the_evaluation(tmp_path, monkeypatch, capsys):
    import ssr_ros.completion_evaluation as evaluation
    from ssr_ros.completion.network import SSRUNetConfig, build_ssr_unet
    from ssr_ros.completion.weights import save_model

    save_model(build_ssr_unet(SSRUNetConfig(base_width=2, max_width=4, levels=2, norm_groups=1)), tmp_path / "tiny.pt",
               contract=TINY_CONTRACT)
    calls = []

    def fake_evaluate_seed(seed, config, completion, poisson, layout=None, objects=None):
        calls.append((seed, config.frames_per_scene, config.image_width, config.image_height, completion.weights, poisson,
                      layout is None, objects))
        scores = {"fscore": 0.5, "precision": 0.5, "recall": 0.5, "triangles": 1}
        return {"seed": seed, "seconds": {}, "methods": {"fusion": scores, "network": scores}}

    monkeypatch.setattr(evaluation, "evaluate_seed", fake_evaluate_seed)
    assert main(["evaluate-completion", "--seeds", "7", "8", "--weights", str(tmp_path / "tiny.pt"), "--frames", "5",
                 "--width", "64", "--height", "48", "--no-poisson", "--no-layout"]) == 0
    assert calls == [(s, 5, 64, 48, str(tmp_path / "tiny.pt"), None, True, None) for s in (7, 8)]
    out = capsys.readouterr().out
    assert "| fusion only |" in out and "Poisson" not in out and "| 7 fusion + network |" in out
    # the object row runs after the layout: without it, refused before any room is built
    calls.clear()
    assert main(["evaluate-completion", "--seeds", "7", "--weights", str(tmp_path / "tiny.pt"), "--no-layout",
                 "--objects"]) != 0
    assert calls == [] and "--objects needs the layout" in capsys.readouterr().err
    assert main(["evaluate-completion", "--seeds", "7", "--weights", str(tmp_path / "tiny.pt"), "--no-poisson",
                 "--objects"]) == 0
    assert calls[0][-1] is not None and calls[0][-1].class_index("chair") is not None  # the packaged shape prior
