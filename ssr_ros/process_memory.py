"""Where a process's memory goes, and glibc's allocator settings that decide how much of it is waste.

A long-running mapper holds its map (counted by the map itself), the completion model, and a
stream of large short-lived arrays: image messages, mesh and voxel-map copies, planning
volumes. With glibc's malloc every thread that allocates gets an *arena* of its own (up to
8 x cores of them), and memory freed inside an arena's heap stays in the process until the
arena's top is free; with the node's many threads (integration, completion, the executor's, the
DDS threads) the freed space of past copies piles up as free-but-held heap. This module reads
that back (``mallinfo2`` and ``malloc_info``: bytes in use, bytes free but held, arenas) beside
the kernel's view (``/proc/self/status``, ``/proc/self/smaps_rollup``), and sets the two glibc
knobs that bound it: the number of arenas (``M_ARENA_MAX``, as ``MALLOC_ARENA_MAX`` does) and
returning free heap pages to the kernel (``malloc_trim``).

On a C library other than glibc (musl, macOS) the allocator figures are absent and the settings
do nothing (their functions return False / None).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import threading

M_ARENA_MAX = -8
"""mallopt parameter number of M_ARENA_MAX (glibc malloc.h)."""


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


_libc_lock = threading.Lock()
_libc: ctypes.CDLL | None | bool = False  # False: not looked up yet


def _glibc() -> ctypes.CDLL | None:
    """glibc's handle, or None when the process runs on another C library."""
    global _libc
    with _libc_lock:
        if _libc is False:
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.mallinfo2.restype = _Mallinfo2
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
                libc.open_memstream.restype = ctypes.c_void_p
                libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
                libc.fclose.argtypes = [ctypes.c_void_p]
                libc.free.argtypes = [ctypes.c_void_p]
                _libc = libc
            except (OSError, AttributeError):  # not glibc (or glibc < 2.33 without mallinfo2)
                _libc = None
        return _libc or None


def limit_malloc_arenas(count: int) -> bool:
    """At most ``count`` malloc arenas from now on (``mallopt(M_ARENA_MAX)``, what the environment
    variable ``MALLOC_ARENA_MAX`` sets at start-up); threads beyond it share arenas. Takes effect
    for threads that have not allocated yet: call it before the process starts its threads.
    ``count`` <= 0 leaves glibc's default (8 x cores). Returns whether the setting was applied."""
    libc = _glibc()
    if count <= 0 or libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, int(count)))


def release_free_heap() -> bool:
    """Give the free pages of every malloc arena back to the kernel (``malloc_trim(0)``); returns
    whether any memory was released. Costs a walk over the free lists (milliseconds)."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def malloc_arenas() -> int | None:
    """Number of malloc arenas in the process (from ``malloc_info``), None without glibc."""
    libc = _glibc()
    if libc is None:
        return None
    # malloc_info writes XML to a stdio stream: a stream in memory, no file
    buffer, size = ctypes.c_void_p(), ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
    if not stream:
        return None
    try:
        libc.malloc_info(0, stream)
    finally:
        libc.fclose(stream)  # sets buffer and size
    try:
        text = ctypes.string_at(buffer, size.value).decode("utf-8", errors="replace") if buffer.value else ""
    finally:
        libc.free(buffer)
    return len(re.findall(r"<heap nr=", text))


def _kib_fields(path: str, names: tuple[str, ...]) -> dict[str, int]:
    """``name: value`` lines in kB of a /proc file, as bytes (missing names absent)."""
    values: dict[str, int] = {}
    try:
        with open(path) as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in names:
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


def process_memory(pid: int | str = "self", arenas: bool = True) -> dict[str, int]:
    """Memory of a process in bytes: ``rss``, ``rss_anonymous`` and ``rss_file`` (kernel), ``threads``;
    for this process (``pid='self'``) on glibc also ``heap_in_use`` (allocated by malloc and not
    freed, in arenas and in mmapped chunks), ``heap_free_held`` (free chunks malloc keeps in its
    arenas: resident until :func:`release_free_heap` hands their pages back, after which they stay
    counted here but no longer in RSS), ``heap_mmapped`` and ``malloc_arenas``."""
    status = _kib_fields(f"/proc/{pid}/status", ("VmRSS", "RssAnon", "RssFile"))
    out = {"rss": status.get("VmRSS", 0), "rss_anonymous": status.get("RssAnon", 0),
           "rss_file": status.get("RssFile", 0)}
    try:
        out["threads"] = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        pass
    libc = _glibc() if pid in ("self", os.getpid()) else None
    if libc is not None:
        info = libc.mallinfo2()
        out["heap_in_use"] = int(info.uordblks + info.hblkhd)
        out["heap_free_held"] = int(info.fordblks)
        out["heap_mmapped"] = int(info.hblkhd)
        if arenas:
            count = malloc_arenas()
            if count is not None:
                out["malloc_arenas"] = count
    return out
