"""What every `ssr train*` command prints when a run ends."""

from __future__ import annotations

from types import SimpleNamespace

from ssr_ros.cli.train_command import print_training_result


def test_the_training_report_gives_steps_loss_trend_last_validation_and_weights(capsys):
    losses = [2.0] * 10 + [1.0] * 5 + [0.5] * 10
    result = SimpleNamespace(losses=losses, seconds=12.4, weights_path="out/run/model.pt",
                             validation=[{"step": 10, "iou": 0.5}, {"step": 25, "iou": 0.123456, "rooms": 3}])
    print_training_result(result)
    assert capsys.readouterr().out.splitlines() == [
        "trained 25 steps in 12 s: loss 2.0000 -> 0.5000",
        "validation: step=25, iou=0.1235, rooms=3",
        "weights: out/run/model.pt",
    ]


def test_a_run_without_validation_prints_no_validation_line(capsys):
    print_training_result(SimpleNamespace(losses=[], seconds=0.0, weights_path="w.pt", validation=[]))
    assert capsys.readouterr().out.splitlines() == ["trained 0 steps in 0 s: loss nan -> nan", "weights: w.pt"]
