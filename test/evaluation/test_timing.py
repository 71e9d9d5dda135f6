"""Frames per second and eta_3D."""

from __future__ import annotations

import pytest

from ssr_ros.errors import InvalidInput
from ssr_ros.evaluation import FrameTimer, eta_3d, frames_per_second


def test_fps_and_eta3d_known_values():
    assert frames_per_second(30, 2.0) == 15.0
    assert eta_3d(20.0, 0.5, 0.6) == pytest.approx(6.0)
    assert eta_3d(20.0, 1.0, 1.0) == 20.0 and eta_3d(20.0, 0.0, 0.9) == 0.0


def test_bad_values_are_named():
    with pytest.raises(InvalidInput, match="miou=55"):
        eta_3d(10.0, 55.0, 0.5)
    with pytest.raises(InvalidInput, match="elapsed time"):
        frames_per_second(10, 0.0)


def test_frame_timer_counts_frames():
    timer = FrameTimer()
    for _ in range(3):
        with timer:
            sum(range(1000))
    assert timer.num_frames == 3 and timer.total_seconds > 0
    assert timer.fps == pytest.approx(3 / timer.total_seconds)


def test_best_time_is_the_fastest_timed_call_after_the_warm_up(monkeypatch):
    import ssr_ros.evaluation.timing as timing

    clock = [0.0]
    durations = iter([5.0, 3.0, 1.0, 2.0])  # the warm-up call is the slowest and not counted
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])

    def work():
        clock[0] += next(durations)

    assert timing.best_time(work, repeats=3, warmup=1) == 1.0
    with pytest.raises(StopIteration):  # exactly four calls were made
        work()
