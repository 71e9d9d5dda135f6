"""Process memory figures and glibc's allocator settings (ssr_ros.process_memory), each in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ssr_ros.process_memory import _glibc, process_memory

needs_glibc = pytest.mark.skipif(_glibc() is None, reason="the allocator settings are glibc's")

THREADS_FREEING = """
import json, sys, threading
import numpy as np
from ssr_ros.process_memory import limit_malloc_arenas, process_memory, release_free_heap
applied = limit_malloc_arenas(int(sys.argv[1]))
barrier = threading.Barrier(6)
kept = []
def work():
    barrier.wait()  # all six threads allocate at once: each wants an arena of its own
    # 128 KB arrays (below the mmap threshold: in the thread's arena), each followed by a small one
    # that stays alive, as a long-lived result follows a large temporary copy
    pairs = [(np.ones(16_000), np.ones(100)) for _ in range(500)]
    barrier.wait()
    kept.extend(small for _, small in pairs)
    del pairs
threads = [threading.Thread(target=work) for _ in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
before = process_memory()
released = release_free_heap()
after = process_memory()
print(json.dumps({"applied": applied, "before": before, "after": after, "released": released}))
"""


def run_threads(arena_max: int) -> dict:
    out = subprocess.run([sys.executable, "-c", THREADS_FREEING, str(arena_max)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_figures_of_this_process_add_up():
    memory = process_memory()
    assert memory["rss"] > 10_000_000 and memory["threads"] >= 1
    assert abs(memory["rss_anonymous"] + memory["rss_file"] - memory["rss"]) <= 0.05 * memory["rss"] + 1_000_000
    if _glibc() is not None:
        assert memory["heap_in_use"] > 0 and memory["malloc_arenas"] >= 1


@needs_glibc
def test_arena_limit_makes_threads_share_arenas():
    limited = run_threads(1)
    default = run_threads(0)
    assert limited["applied"] and not default["applied"]
    assert limited["before"]["malloc_arenas"] == 1
    assert default["before"]["malloc_arenas"] >= 3  # glibc's default: threads allocating at once get their own


@needs_glibc
def test_freed_heap_is_held_until_released():
    result = run_threads(0)
    held = result["before"]["heap_free_held"]
    assert held > 300_000_000  # six threads x 500 x 128 KB freed between live arrays, kept by malloc
    assert result["released"]
    # the kernel gets the pages back: RSS falls by most of what was held
    assert result["before"]["rss"] - result["after"]["rss"] > 0.8 * held
