"""Process-level behaviour of the node: log throttle, output pacing, CPU threads and large allocations."""

from __future__ import annotations

import subprocess
import sys

from ssr_ros.ros.log_throttle import LogThrottle


def test_one_line_per_reason_and_period():
    now = [100.0]
    throttle = LogThrottle(5.0, clock=lambda: now[0])
    assert throttle.ready(("dropped", "queue_overflow"))
    assert not throttle.ready(("dropped", "queue_overflow"))
    assert throttle.ready(("dropped", "InvalidPose"))  # another reason has its own period
    now[0] += 4.9
    assert not throttle.ready(("dropped", "queue_overflow"))
    now[0] += 0.1
    assert throttle.ready(("dropped", "queue_overflow"))
    assert throttle.ready(("dropped", "InvalidPose"))  # 5.0 s since its line


def test_every_call_passes_with_period_zero():
    throttle = LogThrottle(0.0, clock=lambda: 1.0)
    assert all(throttle.ready("same") for _ in range(3))


def test_process_cpu_threads_hold_for_threads_started_later():
    # in a process of its own: torch's thread count is process state
    code = (
        "import threading, torch\n"
        "from ssr_ros.ros.mapper_node import set_process_cpu_threads\n"
        "assert set_process_cpu_threads(0) is None\n"
        "assert set_process_cpu_threads(1) == 1\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))\n"
        "t.start(); t.join()\n"
        "print(torch.get_num_threads(), seen[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]


def test_busy_limit_waits_in_proportion_to_the_last_run():
    import pytest

    from ssr_ros.ros.output_pacing import BusyLimit

    now = [0.0]
    limit = BusyLimit(0.5, clock=lambda: now[0])
    assert limit.ready()
    now[0] = 1.6
    limit.ran(1.6)  # a 1.6 s update: at most half the time means 1.6 s of rest
    now[0] = 3.1
    assert not limit.ready()
    now[0] = 3.21
    assert limit.ready()
    now[0] = 10.0
    quarter = BusyLimit(0.25, clock=lambda: now[0])
    quarter.ran(1.0)  # at most a quarter of the time: 3 s of rest
    now[0] = 12.9
    assert not quarter.ready()
    now[0] = 13.01
    assert quarter.ready()
    always = BusyLimit(1.0, clock=lambda: now[0])
    always.ran(100.0)
    assert always.ready()
    with pytest.raises(ValueError, match="busy fraction"):
        BusyLimit(0.0)


def test_large_allocations_go_back_to_the_system_when_freed():
    # glibc's default raises its mmap threshold to the size of a freed mapped block: the next block
    # of that size comes from the heap and stays resident when freed under live small objects
    code = (
        "import sys, numpy as np\n"
        "from ssr_ros.ros.mapper_node import map_large_allocations\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024\n"
        "if sys.argv[1] == '1': assert map_large_allocations()\n"
        "n = (16 << 20) // 8\n"
        "a = np.ones(n); del a\n"
        "before = rss()\n"
        "b = np.ones(n); keep = [np.ones(64) for _ in range(1000)]; del b\n"
        "print((rss() - before) / 1e6)\n"
    )
    import platform

    if platform.libc_ver()[0] != "glibc":
        import pytest

        pytest.skip("the heap behaviour checked here is glibc's")
    kept = {}
    for mapped in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", code, mapped], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        kept[mapped] = float(out.stdout)
    assert kept["0"] > 12.0  # the default keeps the freed 16 MB resident
    assert kept["1"] < 4.0
