"""The run files every trainer shares: log, checkpoint, resume rule, learning-rate decay."""

from __future__ import annotations

import json

import pytest
import torch

from ssr_ros.errors import ConfigError
from ssr_ros.training_run import TrainingRun, cosine_decay


def test_a_fresh_run_starts_a_new_log_and_a_resumed_one_appends(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="no checkpoint"):
        TrainingRun(out, resume=True)
    first = TrainingRun(out)
    first.log({"step": 1})
    first.save_checkpoint({"step": 1, "weights": torch.arange(3.0)})
    resumed = TrainingRun(out, resume=True)
    resumed.log({"step": 2})
    assert [json.loads(line)["step"] for line in resumed.log_path.read_text().splitlines()] == [1, 2]
    state = resumed.load_checkpoint()
    assert state["step"] == 1 and torch.equal(state["weights"], torch.arange(3.0))
    TrainingRun(out).log({"step": 7})  # a fresh run in the same folder
    assert [json.loads(line)["step"] for line in first.log_path.read_text().splitlines()] == [7]
    assert first.weights_path == out / "model.pt"


def test_only_the_main_process_writes(tmp_path):
    run = TrainingRun(tmp_path / "rank1", main=False)
    run.log({"step": 1})
    run.save_checkpoint({"step": 1})
    assert not (tmp_path / "rank1").exists()


def test_cosine_decay_runs_from_one_to_its_floor():
    assert cosine_decay(0.0, 0.05) == pytest.approx(1.0)
    assert cosine_decay(0.5, 0.05) == pytest.approx(0.525)
    assert cosine_decay(1.0, 0.1) == pytest.approx(0.1)
    assert cosine_decay(3.0, 0.1) == pytest.approx(0.1) and cosine_decay(-1.0, 0.1) == pytest.approx(1.0)


def test_a_scheduled_trainers_state_comes_back_as_it_was_saved(tmp_path):
    from ssr_ros.config import config_to_dict
    from ssr_ros.map.config import TSDFConfig

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_decay(s / 10, 0.05))
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    scheduler.step()
    run = TrainingRun(tmp_path)
    run.save_state(model, optimizer, scheduler, 7, TSDFConfig())
    assert json.loads(run.load_checkpoint()["config"]) == config_to_dict(TSDFConfig())
    other = torch.nn.Linear(2, 1)
    other_optimizer = torch.optim.AdamW(other.parameters(), lr=0.1)
    other_scheduler = torch.optim.lr_scheduler.LambdaLR(other_optimizer, lambda s: cosine_decay(s / 10, 0.05))
    resumed = TrainingRun(tmp_path, resume=True)
    assert resumed.restore_state(other, other_optimizer, other_scheduler) == 7
    assert torch.equal(other.weight, model.weight) and other_scheduler.last_epoch == scheduler.last_epoch == 1
    assert other_optimizer.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    assert json.loads(resumed.log_path.read_text().splitlines()[-1]) == {"event": "resume", "step": 7}


def test_the_run_clock_ends_the_schedule_by_steps_or_by_time(monkeypatch):
    import ssr_ros.training_run as training_run
    from ssr_ros.training_run import RunClock, cosine_schedule

    now = [100.0]
    monkeypatch.setattr(training_run.time, "time", lambda: now[0])
    by_steps = RunClock(10)
    assert by_steps.fraction(0) == 0.0 and by_steps.fraction(5) == 0.5 and by_steps.fraction(20) == 1.0
    by_time = RunClock(1000, max_seconds=60.0)
    now[0] = 130.0
    assert by_time.fraction(1) == pytest.approx(0.5), "half the time gone: half the run, whatever the steps"
    assert by_time.start() == 130.0 and by_time.fraction(1) == pytest.approx(0.001), "the time counts from start()"
    now[0] = 400.0
    assert by_time.fraction(1) == 1.0
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
    scheduler = cosine_schedule(optimizer, RunClock(4), floor=0.1)
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([cosine_decay(k / 4, 0.1) for k in range(5)])
