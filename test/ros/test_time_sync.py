"""Approximate-time synchronisation, run on the same cases as message_filters where installed."""

from __future__ import annotations

import pytest

from ssr_ros.errors import ConfigError
from ssr_ros.ros.time_sync import ApproximateTimeSync

MS = 1_000_000

# (input, stamp in ms) arrivals, and the sets of stamps that must come out.
CASES = {
    "exact stamps pair up": ([(0, 0), (1, 0), (0, 33), (1, 33)], [(0, 0), (33, 33)]),
    "within slop pairs, beyond slop does not": ([(0, 100), (1, 108), (0, 200), (1, 240)], [(100, 108)]),
    "closest candidate wins": ([(1, 95), (1, 101), (1, 120), (0, 100)], [(100, 101)]),
    "older unmatched messages are dropped after a match": (
        [(0, 0), (0, 33), (0, 66), (1, 66), (1, 70)],
        [(66, 66)],
    ),
    "three inputs need all three": ([(0, 10), (1, 11), (2, 50), (0, 50), (1, 52)], [(50, 52, 50)]),
}


class _MessageFiltersAdapter:
    """Feeds the same arrivals to message_filters.ApproximateTimeSynchronizer."""

    def __init__(self, num_inputs, callback, queue_size, slop_s):
        import message_filters

        class Stamped:
            def __init__(self, stamp_ns):
                from builtin_interfaces.msg import Time
                from std_msgs.msg import Header

                self.header = Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9))
                self.stamp_ns = stamp_ns

        self._stamped = Stamped
        self._inputs = [message_filters.SimpleFilter() for _ in range(num_inputs)]
        self._sync = message_filters.ApproximateTimeSynchronizer(self._inputs, queue_size, slop_s)
        self._sync.registerCallback(lambda *msgs: callback(*[m.stamp_ns for m in msgs]))

    def add(self, index, stamp_ns, _message):
        self._inputs[index].signalMessage(self._stamped(stamp_ns))


def _ours(num_inputs, callback, queue_size, slop_s):
    return ApproximateTimeSync(num_inputs, callback, queue_size, slop_s)


def _theirs(num_inputs, callback, queue_size, slop_s):
    pytest.importorskip("message_filters", reason="message_filters is only present in a ROS 2 installation")
    return _MessageFiltersAdapter(num_inputs, callback, queue_size, slop_s)


@pytest.mark.parametrize("implementation", [_ours, _theirs], ids=["ssr_ros", "message_filters"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matching_cases(implementation, case):
    arrivals, expected = CASES[case]
    num_inputs = 1 + max(index for index, _ in arrivals)
    emitted = []
    sync = implementation(num_inputs, lambda *stamps: emitted.append(tuple(s // MS for s in stamps)), 10, 0.02)
    for index, stamp_ms in arrivals:
        sync.add(index, stamp_ms * MS, stamp_ms * MS)
    assert emitted == expected


def test_queue_overflow_discards_the_oldest_and_counts_it():
    emitted = []
    sync = ApproximateTimeSync(2, lambda *m: emitted.append(m), queue_size=2, slop_s=0.0)
    for stamp in (1, 2, 3):
        sync.add(0, stamp, stamp)
    assert sync.dropped == 1
    sync.add(1, 1, "late")  # stamp 1 was discarded: no partner
    assert emitted == []
    sync.add(1, 2, "b")
    assert emitted == [(2, "b")]


@pytest.mark.parametrize("kwargs,match", [({"num_inputs": 0}, "num_inputs"), ({"queue_size": 0}, "queue_size"),
                                           ({"slop_s": -1.0}, "slop")])
def test_bad_parameters_are_refused(kwargs, match):
    arguments = {"num_inputs": 2, "callback": print, "queue_size": 5, "slop_s": 0.01, **kwargs}
    with pytest.raises(ConfigError, match=match):
        ApproximateTimeSync(**arguments)


def test_a_second_message_with_an_emitted_stamp_is_counted_not_lost():
    """Frames A and B sent back to back with one stamp, both depth images queued before A's
    color arrives: A is emitted, and B's depth, discarded with it, must be counted."""
    emitted = []
    sync = ApproximateTimeSync(2, lambda *m: emitted.append(m), queue_size=10, slop_s=0.0)
    sync.add(0, 5 * MS, "depth A")
    sync.add(0, 5 * MS, "depth B")
    sync.add(1, 5 * MS, "color A")
    assert emitted == [("depth A", "color A")]
    assert sync.dropped == 1
    sync.add(1, 5 * MS, "color B")  # no partner left: waits, then goes with the next match
    sync.add(0, 6 * MS, "depth C")
    sync.add(1, 6 * MS, "color C")
    assert emitted[-1] == ("depth C", "color C")
    assert sync.dropped == 2


def test_messages_of_an_older_timeline_do_not_block_the_queue():
    """After the clock jumps back, a leftover newer message must not keep emitted ones queued."""
    emitted = []
    sync = ApproximateTimeSync(2, lambda *m: emitted.append(m), queue_size=10, slop_s=0.0)
    sync.add(0, 100 * MS, "old depth")
    sync.add(0, 1 * MS, "depth 1")
    sync.add(1, 1 * MS, "color 1")
    sync.add(1, 1 * MS, "color 1 again")
    assert emitted == [("depth 1", "color 1")]
    assert sync.discard_after(50 * MS) == 1
    assert sync.dropped == 1
    sync.add(1, 2 * MS, "color 2")
    sync.add(0, 2 * MS, "depth 2")
    assert emitted[-1] == ("depth 2", "color 2")
