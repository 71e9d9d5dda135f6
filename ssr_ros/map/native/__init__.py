"""Compiled CPU kernels (C++, own helper threads) for frame integration, built on first use.

``load()`` compiles ``integrate.cpp`` with ``torch.utils.cpp_extension`` into the torch
extension cache the first time it is called (about a minute) and returns the module, or None
when no C++ compiler is available (``build_error()`` then says why). The kernels follow the
arithmetic of :mod:`ssr_ros.map.integration` operation by operation, so both paths give the
same map (up to float16 rounding of rare ties).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

_MODULE = None
_ERROR: str | None = None
_TRIED = False
SOURCE = Path(__file__).resolve().parent / "integrate.cpp"
STALE_LOCK_S = 600.0
"""A build lock older than this is left over from a build that was killed (a build takes about
a minute); it is removed instead of waited on forever."""


def load():
    """The compiled module, or None if it cannot be built (see build_error())."""
    global _MODULE, _ERROR, _TRIED
    if _TRIED:
        return _MODULE
    _TRIED = True
    if os.environ.get("SSR_DISABLE_NATIVE"):
        _ERROR = "disabled by SSR_DISABLE_NATIVE"
        return None
    try:
        from torch.utils.cpp_extension import get_default_build_root
        from torch.utils.cpp_extension import load as load_extension

        flags = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-fast-math"]
        for feature, flag in (("f16c", "-mf16c"), ("sse4_1", "-msse4.1"), ("avx2", "-mavx2")):
            if _cpu_has(feature):  # float16 conversion, rounding and 8-wide vector instructions
                flags.append(flag)

        # The hash of the source, flags and location in the name keeps builds of different
        # versions and checkouts from replacing (and rebuilding) each other in the shared cache.
        digest = hashlib.sha1(SOURCE.read_bytes() + " ".join(flags).encode() + str(SOURCE).encode()).hexdigest()[:12]
        name = f"ssr_map_native_{digest}"
        build_directory = Path(get_default_build_root()) / f"py{sys.version_info[0]}{sys.version_info[1]}_cpu" / name
        build_directory.mkdir(parents=True, exist_ok=True)
        remove_stale_lock(build_directory)
        _MODULE = load_extension(
            name=name,
            build_directory=str(build_directory),
            sources=[str(SOURCE)],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as error:  # noqa: BLE001 - any build failure falls back to torch
        _ERROR = f"{type(error).__name__}: {error}"
        _MODULE = None
    return _MODULE


def remove_stale_lock(build_directory: Path, max_age_s: float = STALE_LOCK_S) -> bool:
    """Remove ``build_directory/lock`` when it is older than ``max_age_s`` (a killed build
    leaves it behind, and torch would wait for it forever); True if one was removed."""
    lock = build_directory / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    if age < max_age_s:
        return False
    print(f"ssr_ros: removing the build lock {lock} left by a build that stopped {age / 60:.0f} min ago",
          file=sys.stderr)
    lock.unlink(missing_ok=True)
    return True


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as handle:
            return any(line.startswith("flags") and f" {flag}" in line for line in handle)
    except OSError:
        return False


def build_error() -> str | None:
    """Why the kernel could not be built (None if it was built or not tried)."""
    return _ERROR
