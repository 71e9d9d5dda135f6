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
from pathlib import Path

_MODULE = None
_ERROR: str | None = None
_TRIED = False
SOURCE = Path(__file__).resolve().parent / "integrate.cpp"


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
        from torch.utils.cpp_extension import load as load_extension

        flags = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-fast-math"]
        for feature, flag in (("f16c", "-mf16c"), ("sse4_1", "-msse4.1"), ("avx2", "-mavx2")):
            if _cpu_has(feature):  # float16 conversion, rounding and 8-wide vector instructions
                flags.append(flag)

        # The source hash in the name keeps builds of different versions (other checkouts,
        # upgrades) from replacing each other in torch's shared extension cache.
        digest = hashlib.sha1(SOURCE.read_bytes() + " ".join(flags).encode()).hexdigest()[:12]
        _MODULE = load_extension(
            name=f"ssr_map_native_{digest}",
            sources=[str(SOURCE)],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as error:  # noqa: BLE001 - any build failure falls back to torch
        _ERROR = f"{type(error).__name__}: {error}"
        _MODULE = None
    return _MODULE


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as handle:
            return any(line.startswith("flags") and f" {flag}" in line for line in handle)
    except OSError:
        return False


def build_error() -> str | None:
    """Why the kernel could not be built (None if it was built or not tried)."""
    return _ERROR
