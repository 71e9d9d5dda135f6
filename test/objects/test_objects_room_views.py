"""Shape-prior samples from the instances of fused generated rooms, and training with them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ssr_ros.objects.room_views import RoomViewsConfig, load_room_views, room_view_samples
from ssr_ros.objects.shape_classes import class_extents, shape_grid


@pytest.fixture(scope="module")
def grids():
    return {name: shape_grid(extent, 16) for name, extent in class_extents().items()}


def test_room_view_samples_hold_the_seen_objects_exact_sdf_at_the_four_turns(grids):
    samples = room_view_samples(7000, grids, frames=20)
    assert len(samples) >= 8 and len(samples) % 4 == 0
    for s in samples:
        cell = grids[s["class_name"]].cell
        sdf = s["sdf"].float().numpy()
        surface, free = s["inputs"][0].numpy(), s["inputs"][1].numpy()
        # what the map observed of the instance lies on the target object's surface, what it saw free outside it
        assert surface.any() and np.mean(np.abs(sdf[surface]) < 1.5 * cell) > 0.9
        assert not free.any() or np.mean(sdf[free] > -cell) > 0.95
        assert (sdf < 0).any() and -math.pi <= s["yaw"] <= math.pi
    # the four samples of one instance are its grid turned by quarter turns: the heading in the grid turns back by as much
    for first in range(0, len(samples), 4):
        yaws = [samples[first + q]["yaw"] for q in range(4)]
        assert len({samples[first + q]["object"] for q in range(4)}) == 1
        for q in range(1, 4):
            assert abs(math.remainder(yaws[q] - yaws[0] + q * math.pi / 2, 2 * math.pi)) < 1e-5


def test_built_rooms_are_cached_and_a_damaged_file_is_built_again(tmp_path, grids):
    config = RoomViewsConfig(rooms=1, frames=20, cache=str(tmp_path / "rooms")).validate()
    classes = sorted(grids)
    first = load_room_views([7000], grids, classes, config, progress=False)
    path = tmp_path / "rooms" / "room_7000.pt"
    stamp = path.stat().st_mtime_ns
    again = load_room_views([7000], grids, classes, config, progress=False)
    assert path.stat().st_mtime_ns == stamp and len(again) == len(first) > 0
    assert all(a.class_index == b.class_index and a.yaw == b.yaw for a, b in zip(first, again))
    path.write_bytes(b"not a room")
    assert len(load_room_views([7000], grids, classes, config, progress=False)) == len(first)
    # other grids: the room is built again for them
    other = {name: shape_grid(extent, 12) for name, extent in class_extents().items()}
    rebuilt = load_room_views([7000], other, classes, config, progress=False)
    assert rebuilt[0].sdf.shape == (12, 12, 12)


def test_train_objects_mixes_room_views_and_validates_on_further_rooms(tmp_path):
    from ssr_ros.cli.main import main

    config = tmp_path / "c.yaml"
    config.write_text(
        "device: cpu\nthreads: 1\n"
        "data: {classes: [chair, table, cabinet, sofa, otherfurniture], validation_samples: 2,\n"
        f"       rooms: {{rooms: 1, validation_rooms: 1, first_seed: 7000, frames: 20, share: 0.5, cache: {tmp_path / 'rooms'}}}}}\n"
        "network: {grid_size: 16, base_width: 2, class_embedding: 2, yaw_bins: 8}\n"
        "optim: {steps: 2, batch_size: 4, log_every: 1, validate_every: 2, checkpoint_every: 1}\n")
    assert main(["train-objects", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    validation = [line["validation"] for line in lines if "validation" in line]
    assert validation and "rooms" in validation[-1] and 0.0 <= validation[-1]["rooms"]["occupancy_iou"] <= 1.0
    assert sorted(p.name for p in (tmp_path / "rooms").iterdir()) == ["room_7000.pt", "room_7001.pt"]
    # rooms train the whole network: with train_classes (embeddings only) they are refused
    from ssr_ros.errors import ConfigError
    from ssr_ros.objects.training import ShapePriorTrainingConfig

    refused = ShapePriorTrainingConfig(init_weights="x.pt")
    refused.data.train_classes, refused.data.rooms.rooms = ["chair"], 1
    with pytest.raises(ConfigError, match="data.rooms"):
        refused.validate()
