"""Run the mapper node under yappi (CPU clock, every thread) and write where its CPU went.

    python benchmarks/node_profile.py OUT_DIR --ros-args -p name:=value ...

Used by ``bench_soak.py throughput --profile OUT_DIR``; yappi is needed only here (not a
dependency of the package: ``pip install yappi``). When the node stops (SIGTERM / SIGINT from the
benchmark) it writes to ``OUT_DIR``:

- ``threads.txt``: CPU seconds of each Python thread (the integration thread, the executor's
  threads, ...);
- ``functions.txt``: the functions by their own CPU time and by CPU time including callees, over
  all threads, and per thread for the threads that took most;
- ``node.pstat``: the whole profile in pstats format (``python -m pstats``).

Native threads that never run Python (Fast DDS's receive and event threads) are invisible to
yappi; the benchmark reads their CPU from ``/proc/<pid>/task``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path


def write_report(out: Path) -> None:
    import yappi

    out.mkdir(parents=True, exist_ok=True)
    threads = sorted(yappi.get_thread_stats(), key=lambda t: -t.ttot)
    with open(out / "threads.txt", "w") as handle:
        handle.write("thread\tnative id\tCPU s\tscheduled\n")
        for thread in threads:
            handle.write(f"{thread.name}\t{getattr(thread, 'tid', '')}\t{thread.ttot:.3f}\t{thread.sched_count}\n")
    with open(out / "functions.txt", "w") as handle:
        stats = yappi.get_func_stats()
        for key, title in (("tsub", "own CPU"), ("ttot", "CPU including callees")):
            handle.write(f"===== all threads, by {title}\n")
            buffer = io.StringIO()
            stats.sort(key).print_all(out=buffer, columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8),
                                                             3: ("ttot", 8), 4: ("tavg", 8)})
            handle.write("\n".join(buffer.getvalue().splitlines()[:90]) + "\n\n")
        for thread in threads[:6]:
            handle.write(f"===== thread {thread.name} ({thread.ttot:.2f} s), by CPU including callees\n")
            buffer = io.StringIO()
            yappi.get_func_stats(filter={"ctx_id": thread.id}).sort("ttot").print_all(
                out=buffer, columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8), 4: ("tavg", 8)})
            handle.write("\n".join(buffer.getvalue().splitlines()[:60]) + "\n\n")
        stats.save(str(out / "node.pstat"), type="pstat")


def main() -> int:
    import yappi

    out = Path(sys.argv[1])
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True, profile_threads=True)
    from ssr_ros.ros import mapper_node

    try:
        return mapper_node.main()
    finally:
        yappi.stop()
        write_report(out)


if __name__ == "__main__":
    sys.exit(main())
