"""Completion scheduling: dirtiest chunks near the camera first, each once until it changes."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.completion.scheduler import CompletionScheduler, SchedulerConfig
from ssr_ros.errors import ConfigError


def make(max_chunks=2, radius=100.0, min_changed=1):
    config = SchedulerConfig(radius=radius, max_chunks_per_run=max_chunks, min_changed_blocks=min_changed)
    return CompletionScheduler(config, chunk_size=32, overlap=8, block_size=8)


def test_cells_tile_space_with_the_configured_overlap():
    scheduler = make()
    assert scheduler.stride == 24
    assert scheduler.chunk_origin((0, 0, 0)) == (-4, -4, -4)
    assert scheduler.chunk_origin((1, -1, 2)) == (20, -28, 44)
    # neighbouring chunks overlap by exactly `overlap` voxels
    assert scheduler.chunk_origin((0, 0, 0))[0] + 32 - scheduler.chunk_origin((1, 0, 0))[0] == 8


def test_dirtiest_first_then_nearest_and_selected_cells_are_forgotten():
    scheduler = make(max_chunks=2)
    # blocks (0..2, 0, 0) -> centre voxels 4, 12, 20 -> cell (0,0,0) x3; block (5,0,0) -> voxel 44 -> cell (1,0,0)
    scheduler.mark_changed(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 0, 0], [-4, 0, 0]]))
    assert scheduler.pending == {(0, 0, 0): 3, (1, 0, 0): 1, (-2, 0, 0): 1}
    camera_near_negative = np.array([-1.5, 0.6, 0.6])
    assert scheduler.select(camera_near_negative, voxel_size=0.05) == [(-4, -4, -4), (-52, -4, -4)]
    assert scheduler.pending == {(1, 0, 0): 1}
    assert scheduler.select(camera_near_negative, voxel_size=0.05) == [(20, -4, -4)]
    assert scheduler.select(camera_near_negative, voxel_size=0.05) == []


def test_far_cells_wait_for_the_camera():
    scheduler = make(radius=1.0)
    scheduler.mark_changed(np.array([[100, 0, 0]]))  # about 40 m away
    assert scheduler.select(np.zeros(3), voxel_size=0.05) == []
    assert len(scheduler.pending) == 1
    assert scheduler.select(np.array([40.2, 0.6, 0.6]), voxel_size=0.05) == [(788, -4, -4)]


def test_min_changed_blocks_delays_small_changes():
    scheduler = make(min_changed=2)
    scheduler.mark_changed(np.array([[0, 0, 0]]))
    assert scheduler.select(None, 0.05) == []
    scheduler.mark_changed(np.array([[1, 0, 0]]))
    assert scheduler.select(None, 0.05) == [(-4, -4, -4)]


def test_bad_overlap_is_refused():
    with pytest.raises(ConfigError, match="overlap=32"):
        CompletionScheduler(SchedulerConfig(), chunk_size=32, overlap=32, block_size=8)
