"""Shape-prior training samples from the object instances of fused generated rooms.

The simulated views of :mod:`~ssr_ros.objects.observation` show one object alone, seen by 1-3
cameras in front of it, with its exact class. What the refinement hands the prior in a map is
different: an instance cut from a room fused from a handheld sequence (part of the sequence
dropped, noisy depth and 2D labels), with the wall behind it and neighbours in its context,
seen from wherever the path went. This module makes samples of the second kind: for each
generated room it renders an RGB-D sequence, fuses a part of it (contiguous segments, as the
object benchmark does), finds the instances as the refinement does
(:func:`~ssr_ros.objects.refinement.object_instances`), and for each instance of a prior class
whose observed surface lies mostly on one object of that class, bins its observation into the
class's grid at the four quarter turns of its footprint's axis (where the alignment's turn search
starts), with the
object's exact signed distance (its own parts) in that grid as the target and its heading in the
grid frame as the yaw target.

Rooms are built once and cached, one file per room (``room_<seed>.pt``, tensors and numbers only,
read with ``weights_only=True``); a file made for other grids (class extents or grid size) is
built again.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssr_ros.atomic_file import atomic_write
from ssr_ros.config import param, validate_config
from ssr_ros.errors import ConfigError
from ssr_ros.objects.observation import ShapeSample, anchor_point, from_grid_frame, observation_grid
from ssr_ros.objects.shape_classes import GRID_SPAN, ShapeGrid

FORMAT = "ssr_ros.object_room_views"
VERSION = 1


@dataclass
class RoomViewsConfig:
    rooms: int = param(0, "generated rooms whose instances train the prior beside the simulated views "
                       "(seeds first_seed ... first_seed + rooms - 1); 0 = simulated views only", low=0, high=100000)
    validation_rooms: int = param(10, "further rooms (the seeds after the training rooms) whose instances are "
                                  "validated on", low=0, high=10000)
    first_seed: int = param(7000, "first room seed (keep clear of the rooms the object benchmark reports on)",
                            low=0, high=2**31 - 1)
    frames: int = param(80, "frames rendered per room (320x240)", low=10, high=10000)
    keep_fraction: float = param(0.5, "share of the frames fused, in contiguous segments of 10", low=0.05, high=1.0)
    share: float = param(0.5, "share of each batch drawn from the rooms' samples", low=0.0, high=1.0)
    cache: str = param("out/object_room_views", "folder of the built rooms (room_<seed>.pt)")

    def validate(self) -> "RoomViewsConfig":
        validate_config(self)
        return self

    def train_seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.rooms))

    def validation_seeds(self) -> list[int]:
        start = self.first_seed + self.rooms
        return list(range(start, start + self.validation_rooms)) if self.rooms else []


def _grid_key(grids: dict[str, ShapeGrid]) -> dict[str, list[float]]:
    return {name: [float(g.size), float(g.cell)] for name, g in sorted(grids.items())}


def partial_sequence(seed: int, frames: int = 80, keep_fraction: float = 0.5):
    """(scene, sequence, kept) of generated room ``seed``: its handheld RGB-D sequence of ``frames``
    frames at 320x240 and the indices of the frames fused, random contiguous segments of 10
    totalling ``keep_fraction``, so objects are seen from some sides only (the rooms the object
    stage is trained and measured on)."""
    from ssr_ros.completion.scenes import kept_frames
    from ssr_ros.data.synthetic import SequenceConfig, SyntheticSequence, TrajectoryConfig, generate_scene

    scene = generate_scene(seed)
    sequence = SyntheticSequence(scene, SequenceConfig(width=320, height=240, trajectory=TrajectoryConfig(num_frames=frames)),
                                 seed=seed)
    return scene, sequence, kept_frames(len(sequence), keep_fraction, 10, np.random.default_rng(seed))


def room_view_samples(seed: int, grids: dict[str, ShapeGrid], frames: int = 80, keep_fraction: float = 0.5) -> list[dict]:
    """Samples (dicts: ``inputs`` bool (2, G, G, G), ``sdf`` float16 (G, G, G) metres, ``class_name``,
    ``yaw`` radians, ``object`` id) of the instances of room ``seed`` whose class has a grid in ``grids``."""
    from ssr_ros.completion.scenes import fuse
    from ssr_ros.data.synthetic.primitives import union_sdf
    from ssr_ros.map.config import TSDFConfig
    from ssr_ros.objects.alignment import footprint_yaw, free_sample
    from ssr_ros.objects.evaluation import object_yaw, own_boxes, own_instance_ids
    from ssr_ros.objects.instances import map_region
    from ssr_ros.objects.refinement import ObjectRefinementConfig, voxels_in, context_box, object_instances

    scene, sequence, kept = partial_sequence(seed, frames, keep_fraction)
    names = scene.taxonomy.names
    tsdf_map = fuse([sequence[i] for i in kept], TSDFConfig())
    refinement = ObjectRefinementConfig()
    region = map_region(tsdf_map, refinement.instances)
    instances = object_instances(region, names, refinement.instances, refinement.join_gap)
    floor_z = region.floor_height(names.index("floor") if "floor" in names else None)
    boxes = scene.torch_boxes()
    by_id = {o.instance_id: o for o in scene.objects}
    rng = np.random.default_rng(seed)
    samples = []
    for inst in instances:
        grid = grids.get(inst.class_name)
        if grid is None or int(inst.observed.sum()) < refinement.min_observed_voxels:
            continue
        surface = region.centers(inst.voxels[inst.observed])
        d, classes, ids = scene.sdf(surface)
        ids = own_instance_ids(scene, classes, ids)[np.abs(d) < 0.05]
        ids = ids[ids > 0]
        if len(ids) < refinement.min_observed_voxels:
            continue
        object_id = int(np.bincount(ids).argmax())
        obj = by_id.get(object_id)
        if obj is None or names[obj.class_id] != inst.class_name or np.mean(ids == object_id) < 0.5:
            continue  # not mostly one object of the instance's class: no target to learn from
        a, b = context_box(region, inst, grid.size * grid.cell / GRID_SPAN, refinement.context_margin)
        free = region.centers(voxels_in(region.free, a, b))
        free = free_sample(free, refinement.alignment.max_free_points, rng)  # as the alignment draws it
        own = own_boxes(scene, obj)
        heading = object_yaw(scene, obj)
        axis = footprint_yaw(surface)
        for quarter in range(4):
            grid_yaw = math.remainder(axis + quarter * math.pi / 2, 2 * math.pi)
            anchor = anchor_point(surface, grid_yaw, floor_z)
            cells = from_grid_frame(grid.centers().reshape(-1, 3), grid_yaw, anchor)
            sdf, _ = union_sdf(torch.as_tensor(cells, dtype=torch.float32), boxes["centers"][own],
                               boxes["half_extents"][own], boxes["rotations"][own])
            samples.append({"inputs": observation_grid(surface, free, grid_yaw, anchor, grid).bool(),
                            "sdf": sdf.reshape((grid.size,) * 3).half(), "class_name": inst.class_name,
                            "yaw": math.remainder(heading - grid_yaw, 2 * math.pi), "object": object_id})
    return samples


def load_room_views(seeds: list[int], grids: dict[str, ShapeGrid], classes: list[str], config: RoomViewsConfig,
                    progress: bool = True) -> list[ShapeSample]:
    """The samples of rooms ``seeds`` as :class:`ShapeSample` (class indices into ``classes``), building
    (and caching under ``config.cache``) the rooms not built yet for these ``grids``."""
    from tqdm import tqdm

    cache = Path(config.cache)
    cache.mkdir(parents=True, exist_ok=True)
    key = _grid_key(grids)
    out: list[ShapeSample] = []
    for seed in tqdm(seeds, desc="rooms", disable=not progress):
        path = cache / f"room_{seed}.pt"
        document = _read(path) if path.exists() else None
        if document is None or document.get("grids") != key or document.get("frames") != config.frames \
                or document.get("keep_fraction") != config.keep_fraction:
            document = {"format": FORMAT, "version": VERSION, "seed": seed, "grids": key, "frames": config.frames,
                        "keep_fraction": config.keep_fraction,
                        "samples": room_view_samples(seed, grids, config.frames, config.keep_fraction)}
            with atomic_write(path, "room views") as handle:
                torch.save(document, handle)
        for s in document["samples"]:
            if s["class_name"] not in classes:
                raise ConfigError(f"room views of seed {seed}: class '{s['class_name']}' is not among {classes}")
            out.append(ShapeSample(s["inputs"].float(), s["sdf"].float(), classes.index(s["class_name"]), float(s["yaw"])))
    return out


def _read(path: Path) -> dict | None:
    """A built room's document, or None when the file is not one (damaged, another format): it is then built again."""
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError):
        return None
    return document if isinstance(document, dict) and document.get("format") == FORMAT else None
