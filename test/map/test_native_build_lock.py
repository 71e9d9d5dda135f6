"""The compiled kernel's build does not wait forever on a lock left by a killed build."""

from __future__ import annotations

import os
import time

from ssr_ros.map.native import STALE_LOCK_S, remove_stale_lock


def test_old_lock_is_removed_and_a_fresh_one_kept(tmp_path):
    lock = tmp_path / "lock"
    lock.touch()
    assert not remove_stale_lock(tmp_path)  # a build in progress: wait for it
    assert lock.exists()
    old = time.time() - STALE_LOCK_S - 5
    os.utime(lock, (old, old))
    assert remove_stale_lock(tmp_path)
    assert not lock.exists()
    assert not remove_stale_lock(tmp_path)  # nothing left to remove
