"""Process-level behaviour of the node: its log throttle and its CPU thread setting."""

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


def printed_by(code: str) -> list[str]:
    """What ``code`` prints, run in a Python process of its own (for process-wide state)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


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
    assert printed_by(code) == ["1", "1"]



def test_the_completion_thread_alone_runs_at_the_lower_priority():
    # in a process of its own: raising a niceness cannot be undone without privileges
    code = (
        "import os, sys, threading\n"
        "from ssr_ros.ros.mapper_node import lower_thread_priority\n"
        "main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())\n"
        "seen = []\n"
        "def work():\n"
        "    seen.append(lower_thread_priority(0))\n"
        "    seen.append(lower_thread_priority(main + 7))\n"
        "    seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - main)\n"
        "t = threading.Thread(target=work)\n"
        "t.start(); t.join()\n"
        "print(*seen, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - main)\n"
    )
    assert printed_by(code) == ["False", "True", "7", "0"]


def test_arena_limit_comes_from_the_command_line_or_the_default():
    from ssr_ros.ros.mapper_node import command_line_arena_max
    from ssr_ros.ros.node_config import NodeConfig

    default = NodeConfig().malloc_arena_max
    assert command_line_arena_max(["node", "--ros-args", "-p", "pose_source:=topic"]) == default
    assert command_line_arena_max(["node", "--ros-args", "-p", "malloc_arena_max:=0"]) == 0
    assert command_line_arena_max(["--ros-args", "--param", "malloc_arena_max:=4", "-p", "x:=1"]) == 4
    assert command_line_arena_max(["--ros-args", "-p", "malloc_arena_max:=many"]) == default  # the node names it
