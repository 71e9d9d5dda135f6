"""FrameOrder: next frames, stale frames and backwards clock jumps told apart by a threshold."""

from __future__ import annotations

import pytest

from ssr_ros.errors import ConfigError
from ssr_ros.frame_order import FrameOrder, StampVerdict

S = 1_000_000_000


def test_stamps_are_classified_against_the_last_integrated_one():
    order = FrameOrder(jump_threshold_s=1.0)
    assert order.check(50 * S) is StampVerdict.NEXT
    order.accept(50 * S)
    assert order.check(50 * S + 1) is StampVerdict.NEXT
    assert order.check(50 * S) is StampVerdict.STALE  # the same stamp again
    assert order.check(49 * S) is StampVerdict.STALE  # exactly the threshold: late, not a jump
    assert order.check(49 * S - 1) is StampVerdict.JUMP_BACK
    assert order.check(0) is StampVerdict.JUMP_BACK
    order.reset()
    assert order.last_ns is None and order.check(0) is StampVerdict.NEXT


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("nan")])
def test_a_threshold_that_is_not_positive_is_refused(threshold):
    with pytest.raises(ConfigError, match="jump_threshold_s"):
        FrameOrder(threshold)
