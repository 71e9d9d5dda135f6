"""A multi-room floor (apartment / office) and a robot tour through every room, for long runs.

``generate_floor(seed, config)`` lays out a ``width x depth`` floor (24 x 20 m by default): a
corridor along x through the middle, ``rooms_per_side`` rooms on each side of random widths,
each with a door into the corridor and (``connecting_doors``) a door into its neighbour on the
same side. Every room is furnished like a room of :func:`~ssr_ros.data.synthetic.layout.generate_scene`
of a seed-chosen type (its own shell, doors and windows left out), with the strip from its door
to its centre kept clear for the robot. The result is an ordinary
:class:`~ssr_ros.data.synthetic.scene.Scene` (``room_type == "floor"``, ``rooms`` listing each
room's box and door), so rendering, ground truth and sequences work on it unchanged.

``tour_trajectory(scene, config)`` (trajectory kind ``tour``) drives a robot-height camera
down the corridor, into every room through its door, once around on the spot in the middle of
the room, back out, and at the end back along the corridor to the start, looking where it goes:
the kind of path that fills a large map and comes back to places it left long ago.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.config import param, validate_config
from ssr_ros.data.synthetic.furniture import ROOM_TYPES, Part, paint_colors, wood_colors
from ssr_ros.data.synthetic.layout import SceneConfig, _Builder, generate_scene
from ssr_ros.data.synthetic.materials import Material
from ssr_ros.data.synthetic.primitives import BoxSet
from ssr_ros.data.synthetic.scene import Scene, SceneObject
from ssr_ros.errors import ConfigError
from ssr_ros.geometry.pose import look_at
from ssr_ros.taxonomy import ClassTaxonomy

SKIPPED_TEMPLATES = {"door", "window", "curtain"}
"""Objects of a furnished room that belong to its own shell, not to the floor's."""


@dataclass
class FloorConfig:
    """Parameters of the floor generator."""

    width: float = param(24.0, "floor extent along x (the corridor), metres", low=6.0, high=200.0)
    depth: float = param(20.0, "floor extent along y, metres", low=6.0, high=200.0)
    corridor_width: float = param(1.8, "corridor width, metres", low=1.0, high=5.0)
    rooms_per_side: int = param(4, "rooms on each side of the corridor", low=1, high=40)
    height: float = param(2.7, "ceiling height, metres", low=2.2, high=5.0)
    wall_thickness: float = param(0.1, "thickness of every wall, floor and ceiling slab, metres", low=0.05, high=0.5)
    door_width: float = param(0.95, "door opening width, metres", low=0.7, high=2.0)
    door_height: float = param(2.1, "door opening height, metres", low=1.8, high=3.0)
    connecting_doors: bool = param(True, "a door between neighbouring rooms on the same side")
    furniture: bool = param(True, "furnish the rooms")

    def validate(self) -> "FloorConfig":
        validate_config(self)
        room_depth = (self.depth - self.corridor_width) / 2 - self.wall_thickness
        if room_depth < 2.0:
            raise ConfigError(f"depth={self.depth} leaves {room_depth:.2f} m deep rooms beside a "
                              f"{self.corridor_width} m corridor; make it at least 2 m")
        if self.width / self.rooms_per_side < 2.0:
            raise ConfigError(f"{self.rooms_per_side} rooms per side on {self.width} m leaves less than 2 m per room")
        if self.door_height >= self.height:
            raise ConfigError(f"door_height={self.door_height} must be below height={self.height}")
        return self


LARGE_FLOOR = dict(width=60.0, depth=20.0, rooms_per_side=10)
"""A 60 x 20 m floor of 20 rooms (about 6 x 9 m each) along a 60 m corridor: at the map's default
voxel size its map is several times the default floor's (see ``benchmarks/bench_soak.py --floor large``),
for memory-budget soaks where the whole map must not fit the budget."""

FLOOR_SIZES = {"default": {}, "large": LARGE_FLOOR}
"""Named floor configurations (``FloorConfig(**FLOOR_SIZES[name])``)."""


@dataclass
class FloorRoom:
    """One room: interior box ``lo``..``hi`` (x, y metres), its type, and where its corridor door is."""

    lo: tuple[float, float]
    hi: tuple[float, float]
    room_type: str
    door: tuple[float, float]
    """Centre of the corridor door opening (x, y on the wall's centre line)."""
    side: int
    """-1: below the corridor (smaller y), +1: above it."""

    @property
    def centre(self) -> np.ndarray:
        return (np.asarray(self.lo) + np.asarray(self.hi)) / 2


def _wall(builder: _Builder, axis: int, fixed: float, start: float, end: float, openings, height: float,
          thickness: float, colors, door_height: float) -> None:
    """A wall along ``axis`` (0 = x, 1 = y) at ``fixed`` on the other axis from ``start`` to
    ``end``, with door ``openings`` [(centre, width)] cut in (a lintel above each)."""
    pieces = []
    cursor = start
    for centre, width in sorted(openings):
        a, b = centre - width / 2, centre + width / 2
        if a > cursor:
            pieces.append((cursor, a, 0.0, height))
        pieces.append((a, b, door_height, height))
        cursor = b
    if end > cursor:
        pieces.append((cursor, end, 0.0, height))
    parts = []
    for a, b, z0, z1 in pieces:
        mid, half = (a + b) / 2, (b - a) / 2
        centre = [0.0, 0.0, (z0 + z1) / 2]
        extent = [0.0, 0.0, (z1 - z0) / 2]
        centre[axis], extent[axis] = mid, half
        centre[1 - axis], extent[1 - axis] = fixed, thickness / 2
        parts.append(Part(tuple(centre), tuple(extent), "wall", Material.PAINT, colors[0], colors[1], 0.6))
    builder.add_object("wall", parts, np.zeros(3), 0.0, object_class="wall")


def _door_leaf(builder: _Builder, axis: int, fixed: float, centre: float, width: float, height: float, rng) -> None:
    """An open door leaf standing against the wall beside the opening (a thin box)."""
    wood = wood_colors(rng)
    leaf_centre = [0.0, 0.0, height / 2]
    extent = [0.0, 0.0, height / 2]
    leaf_centre[axis], extent[axis] = centre + width / 2 + 0.05 + width / 2, width / 2
    leaf_centre[1 - axis], extent[1 - axis] = fixed, 0.02
    part = Part(tuple(leaf_centre), tuple(extent), "door", Material.WOOD, wood[0], wood[1], 0.06)
    builder.add_object("door", [part], np.zeros(3), 0.0, object_class="door")


def _room_splits(rng: np.random.Generator, width: float, count: int) -> np.ndarray:
    """x positions of the ``count + 1`` room borders: random widths, each at least 2 m."""
    weights = rng.uniform(0.75, 1.25, count)
    sizes = 2.0 + (width - 2.0 * count) * weights / weights.sum()
    return np.concatenate([[0.0], np.cumsum(sizes)])


def _furniture(seed: int, room: FloorRoom, taxonomy: ClassTaxonomy, keep_clear) -> tuple[BoxSet | None, list]:
    """Boxes and objects of a furnished room of ``room``'s type moved into ``room`` (the shell,
    doors, windows and anything in the ``keep_clear`` boxes left out)."""
    lo, hi = np.asarray(room.lo), np.asarray(room.hi)
    side = float(np.clip(min(hi - lo), 2.0, 20.0))
    source = generate_scene(seed, SceneConfig(room_type=room.room_type, min_room_size=side, max_room_size=side),
                            taxonomy)
    W, D, _ = source.room_size
    offset = np.array([lo[0] + (hi[0] - lo[0] - W) / 2, lo[1] + (hi[1] - lo[1] - D) / 2, 0.0])
    box_lo, box_hi = source.boxes.aabbs()
    shell = set(source.shell.values())
    kept_boxes, objects = [], []
    for obj in source.objects:
        if obj.name in SKIPPED_TEMPLATES or any(i in shell for i in obj.box_indices):
            continue
        olo = box_lo[obj.box_indices].min(axis=0) + offset
        ohi = box_hi[obj.box_indices].max(axis=0) + offset
        if any(np.all(olo[:2] < chi) and np.all(ohi[:2] > clo) for clo, chi in keep_clear):
            continue
        objects.append((obj, len(kept_boxes)))
        kept_boxes.extend(obj.box_indices)
    if not kept_boxes:
        return None, []
    boxes = source.boxes.subset(np.asarray(kept_boxes))
    boxes.centers = boxes.centers + offset
    return boxes, objects


def generate_floor(seed: int, config: FloorConfig | None = None, taxonomy: ClassTaxonomy | None = None) -> Scene:
    """A furnished multi-room floor, identical for identical ``(seed, config, taxonomy)``."""
    config = (config or FloorConfig()).validate()
    taxonomy = taxonomy or ClassTaxonomy.load()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xF100]))
    W, D, H, t = config.width, config.depth, config.height, config.wall_thickness
    builder = _Builder(taxonomy, rng, (W, D, H), t)
    builder.add_shell()
    wall_colors = paint_colors(rng)
    corridor_lo, corridor_hi = D / 2 - config.corridor_width / 2, D / 2 + config.corridor_width / 2
    rooms: list[FloorRoom] = []
    types = [name for name in ROOM_TYPES if name != "bathroom"]
    for side in (-1, 1):
        splits = _room_splits(rng, W, config.rooms_per_side)
        wall_y = corridor_lo - t / 2 if side < 0 else corridor_hi + t / 2
        y_lo, y_hi = (0.0, corridor_lo - t) if side < 0 else (corridor_hi + t, D)
        doors = []
        for k in range(config.rooms_per_side):
            x_lo = splits[k] + (t / 2 if k else 0.0)
            x_hi = splits[k + 1] - (t / 2 if k < config.rooms_per_side - 1 else 0.0)
            door_x = float(rng.uniform(x_lo + config.door_width / 2 + 0.3, x_hi - config.door_width / 2 - 0.3))
            doors.append((door_x, config.door_width))
            room_type = types[int(rng.integers(len(types)))]
            rooms.append(FloorRoom((x_lo, y_lo), (x_hi, y_hi), room_type, (door_x, wall_y), side))
            _door_leaf(builder, 0, wall_y + side * (t / 2 + 0.03), door_x, config.door_width, config.door_height, rng)
        _wall(builder, 0, wall_y, 0.0, W, doors, H, t, wall_colors, config.door_height)
        for k in range(1, config.rooms_per_side):  # partitions between neighbouring rooms
            openings = []
            if config.connecting_doors:
                span = y_hi - y_lo
                openings = [(float(y_lo + rng.uniform(0.3, 0.7) * span), config.door_width)]
            _wall(builder, 1, float(splits[k]), y_lo, y_hi, openings, H, t, wall_colors, config.door_height)
    boxes = builder.build()
    objects = list(builder.objects)
    if config.furniture:
        sets = [boxes]
        for index, room in enumerate(rooms):
            door = np.asarray(room.door)
            centre = room.centre
            path_lo = np.minimum(door, centre) - 0.8
            path_hi = np.maximum(door, centre) + 0.8
            spin_lo, spin_hi = centre - 1.0, centre + 1.0
            furniture, kept = _furniture(int(seed) * 1000 + index, room, taxonomy,
                                         [(path_lo, path_hi), (spin_lo, spin_hi)])
            if furniture is None:
                continue
            first_box = sum(len(s) for s in sets)
            first_instance = len(objects) + 1
            instance_map = {}
            for n, (obj, start) in enumerate(kept):
                instance = first_instance + n
                instance_map[obj.instance_id] = instance
                indices = [first_box + start + j for j in range(len(obj.box_indices))]
                objects.append(SceneObject(instance, obj.class_id, obj.name, indices))
            furniture.instance_ids = np.array([instance_map[i] for i in furniture.instance_ids], dtype=np.int64)
            sets.append(furniture)
        boxes = BoxSet.concatenate(sets)
    light = np.array([W / 2, D / 2, H - 0.3])
    return Scene(
        room_size=(W, D, H), wall_thickness=t, boxes=boxes, objects=objects, taxonomy=taxonomy,
        shell=builder.shell, light_position=light, seed=int(seed), room_type="floor", rooms=rooms,
    )


def tour_trajectory(scene: Scene, num_frames: int, frame_rate: float, start_stamp_ns: int,
                    height: float = 0.7, pitch: float = -0.15, turn_rate: float = 0.8, speed: float = 0.5):
    """(poses (N, 4, 4), stamps (N,)) of a robot visiting every room of a floor (see the module doc).

    The path (straight segments at ``speed`` m/s, turns on the spot at ``turn_rate`` rad/s) is
    resampled to ``num_frames`` poses evenly in time; the stamps are ``frame_rate`` apart.
    """
    rooms = sorted(getattr(scene, "rooms", []) or [], key=lambda r: (r.door[0], r.side))
    if not rooms:
        raise ConfigError("the 'tour' trajectory needs a floor scene (ssr synth --layout floor)")
    corridor_y = float(np.mean([r.door[1] for r in rooms]))
    start = np.array([0.6, corridor_y])
    # key points: corridor -> door -> room centre (spin) -> door -> corridor, room after room
    stops: list[tuple[np.ndarray, bool]] = [(start, False)]
    for room in rooms:
        door = np.asarray(room.door)
        stops += [(np.array([door[0], corridor_y]), False), (door, False), (room.centre, True), (door, False),
                  (np.array([door[0], corridor_y]), False)]
    stops.append((start, False))
    # timeline of (time, x, y, yaw)
    samples = [(0.0, *start, 0.0)]
    time, yaw = 0.0, 0.0
    for target, spin in stops[1:]:
        here = np.array(samples[-1][1:3])
        delta = target - here
        distance = float(np.linalg.norm(delta))
        if distance > 1e-6:
            heading = float(np.arctan2(delta[1], delta[0]))
            turn = (heading - yaw + np.pi) % (2 * np.pi) - np.pi
            time += abs(turn) / turn_rate
            yaw += turn
            samples.append((time, *here, yaw))
            time += distance / speed
            samples.append((time, *target, yaw))
        if spin:
            time += 2 * np.pi / turn_rate
            yaw += 2 * np.pi
            samples.append((time, *target, yaw))
    table = np.array(samples)
    when = np.linspace(0.0, table[-1, 0], num_frames)
    x = np.interp(when, table[:, 0], table[:, 1])
    y = np.interp(when, table[:, 0], table[:, 2])
    heading = np.interp(when, table[:, 0], table[:, 3])
    poses = []
    for xi, yi, h in zip(x, y, heading):
        eye = np.array([xi, yi, height])
        forward = np.array([np.cos(h) * np.cos(pitch), np.sin(h) * np.cos(pitch), np.sin(pitch)])
        poses.append(look_at(eye, eye + forward))
    stamps = start_stamp_ns + np.round(np.arange(num_frames) * 1e9 / frame_rate).astype(np.int64)
    return np.array(poses), stamps
