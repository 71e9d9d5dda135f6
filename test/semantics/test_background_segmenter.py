"""The node's segmenter stage: one frame at a time, at most rate_hz, errors returned with the frame."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from ssr_ros.semantics.background import BackgroundSegmenter


def frame(k: int):
    return SimpleNamespace(rgb=np.full((4, 5, 3), k, np.uint8), stamp=k)


def wait_finished(segmenter, count, timeout=10.0):
    out, deadline = [], time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out += segmenter.finished()
        time.sleep(0.005)
    return out


def test_takes_one_frame_at_a_time_at_most_at_its_rate():
    now = [0.0]
    release = threading.Event()

    def segment(rgb):
        release.wait(5.0)
        return np.full(rgb.shape[:2] + (3,), rgb[0, 0, 0] / 10.0, np.float32)

    segmenter = BackgroundSegmenter(segment, rate_hz=2.0, clock=lambda: now[0])
    assert segmenter.offer(frame(1))
    assert not segmenter.offer(frame(2))  # busy with frame 1
    release.set()
    done = wait_finished(segmenter, 1)
    assert [d.frame.stamp for d in done] == [1] and done[0].error is None
    assert done[0].probabilities.shape == (4, 5, 3) and done[0].probabilities[0, 0, 0] == pytest.approx(0.1)
    assert not segmenter.offer(frame(3))  # idle, but its 0.5 s period has not passed
    now[0] = 0.5
    assert segmenter.offer(frame(4))
    assert [d.frame.stamp for d in wait_finished(segmenter, 1)] == [4]
    assert not segmenter.offer(SimpleNamespace(rgb=None))  # a depth-only frame: nothing to segment
    segmenter.close()
    now[0] = 10.0
    assert not segmenter.offer(frame(5))


def test_a_failing_model_returns_the_frame_with_its_error():
    def segment(rgb):
        raise RuntimeError("model exploded")

    segmenter = BackgroundSegmenter(segment, rate_hz=100.0)
    assert segmenter.offer(frame(7))
    done = wait_finished(segmenter, 1)
    assert done[0].frame.stamp == 7 and done[0].probabilities is None and "exploded" in str(done[0].error)
    segmenter.close()
