"""How long this process has been running: the start of a command's wall time includes the
interpreter's start-up and imports, which a timer started in ``main()`` would miss."""

from __future__ import annotations

import os


def process_age_s() -> float:
    """Seconds since this process started (Linux: /proc); 0 where that is not available."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            up_s = float(uptime.read().split()[0])
        return max(0.0, up_s - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
