"""Room layout: a deterministic (by seed) furnished room from the parametric templates.

``generate_scene(seed, config, taxonomy)`` builds the shell (floor, four walls, ceiling),
cuts in doors and windows (with curtains), then places furniture of the room type's list:
large items against walls, tables and lamps on the floor, chairs at tables and desks,
pictures hung on walls, small objects on tables, desks, nightstands and low cabinets.
Nothing overlaps: every placement is checked against the axis-aligned bounds of what is
already there (plus keep-out zones in front of doors and windows) and retried elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssr_ros.config import param, validate_config
from ssr_ros.data.synthetic.furniture import ROOM_TYPES, TEMPLATES, ObjectTemplate, Part, fabric_colors, metal_colors, paint_colors, wood_colors
from ssr_ros.data.synthetic.materials import Material
from ssr_ros.data.synthetic.primitives import BoxSet, yaw_rotation
from ssr_ros.data.synthetic.scene import Scene, SceneObject
from ssr_ros.errors import ConfigError
from ssr_ros.taxonomy import UNKNOWN_ID, ClassTaxonomy


def object_class_of(class_ids: list[int], volumes: list[float]) -> int:
    """The class of an object made of parts of ``class_ids`` with ``volumes``: the class whose parts
    hold the most volume (ties: the lower id)."""
    totals: dict[int, float] = {}
    for cid, volume in zip(class_ids, volumes):
        totals[cid] = totals.get(cid, 0.0) + volume
    return min(totals, key=lambda cid: (-totals[cid], cid))


@dataclass
class SceneConfig:
    """Parameters of the room generator."""

    room_type: str = param("", "room type; empty = chosen by the seed", choices=["", *ROOM_TYPES])
    min_room_size: float = param(3.0, "smallest room side, metres", low=2.0, high=20.0)
    max_room_size: float = param(6.0, "largest room side, metres", low=2.0, high=20.0)
    min_height: float = param(2.4, "lowest ceiling, metres", low=2.0, high=5.0)
    max_height: float = param(2.9, "highest ceiling, metres", low=2.0, high=5.0)
    wall_thickness: float = param(0.1, "thickness of wall, floor and ceiling slabs, metres", low=0.02, high=0.5)
    max_windows: int = param(2, "most windows in the room", low=0, high=6)
    furniture_density: float = param(1.0, "scales the chance of placing each item", low=0.0, high=2.0)
    small_objects: bool = param(True, "put small objects on tables, desks and cabinets")
    placement_attempts: int = param(60, "tries per item before it is skipped", low=1, high=1000)

    def validate(self) -> "SceneConfig":
        validate_config(self)
        if self.min_room_size > self.max_room_size:
            raise ConfigError(f"min_room_size={self.min_room_size} exceeds max_room_size={self.max_room_size}")
        if self.min_height > self.max_height:
            raise ConfigError(f"min_height={self.min_height} exceeds max_height={self.max_height}")
        return self


# wall k: (inward normal, tangent axis, fixed axis value as a function of W/D)
WALLS = ("x_min", "x_max", "y_min", "y_max")
_NORMALS = {"x_min": (1.0, 0.0), "x_max": (-1.0, 0.0), "y_min": (0.0, 1.0), "y_max": (0.0, -1.0)}
_YAW_FACING = {"x_min": -np.pi / 2, "x_max": np.pi / 2, "y_min": 0.0, "y_max": np.pi}


class _Builder:
    def __init__(self, taxonomy: ClassTaxonomy, rng: np.random.Generator, size: tuple[float, float, float], thickness: float):
        self.taxonomy = taxonomy
        self.rng = rng
        self.W, self.D, self.H = size
        self.t = thickness
        self.rows: list[tuple] = []  # (center, half, R, class, instance, material, color, secondary, scale, seed)
        self.objects: list[SceneObject] = []
        self.occupied: list[tuple[np.ndarray, np.ndarray]] = []  # AABBs that block placement
        self.supports: list[tuple[np.ndarray, np.ndarray, float, float]] = []  # (centre_xy, half_xy, yaw, z) tops
        self.seats: list[tuple[np.ndarray, float]] = []  # chair spots (xy, yaw)
        self.shell: dict[str, int] = {}

    # -- class ids --------------------------------------------------------------------
    def class_id(self, name: str, fallback: str | None = "otherfurniture") -> int:
        names = self.taxonomy.names
        if name in names:
            return names.index(name)
        if fallback is not None and fallback in names:
            return names.index(fallback)
        return UNKNOWN_ID

    # -- boxes and objects -------------------------------------------------------------
    def add_object(self, name: str, parts: list[Part], origin: np.ndarray, yaw: float, object_class: str | None = None) -> SceneObject:
        instance = len(self.objects) + 1
        R = yaw_rotation(yaw)
        indices = []
        class_ids = []
        volumes = []
        for part in parts:
            fallback = None if part.class_name == "ceiling" else "otherfurniture"
            cid = self.class_id(part.class_name, fallback)
            center = origin + R @ np.asarray(part.center)
            indices.append(len(self.rows))
            class_ids.append(cid)
            volumes.append(float(np.prod(part.half)))
            self.rows.append((center, np.asarray(part.half), R, cid, instance, int(part.material), part.color, part.secondary, part.scale, float(self.rng.uniform(0, 100))))
        if object_class is not None:
            cid = self.class_id(object_class, None if object_class == "ceiling" else "otherfurniture")
        else:  # the class of most of its volume (a counter with a sink in it is a counter)
            cid = object_class_of(class_ids, volumes)
        obj = SceneObject(instance, cid, name, indices)
        self.objects.append(obj)
        return obj

    def build(self) -> BoxSet:
        rows = self.rows
        return BoxSet(
            centers=np.array([r[0] for r in rows], dtype=np.float64),
            half_extents=np.array([r[1] for r in rows], dtype=np.float64),
            rotations=np.array([r[2] for r in rows], dtype=np.float64),
            class_ids=np.array([r[3] for r in rows], dtype=np.int64),
            instance_ids=np.array([r[4] for r in rows], dtype=np.int64),
            materials=np.array([r[5] for r in rows], dtype=np.int64),
            colors=np.array([r[6] for r in rows], dtype=np.float32),
            secondary_colors=np.array([r[7] for r in rows], dtype=np.float32),
            pattern_scales=np.array([r[8] for r in rows], dtype=np.float32),
            pattern_seeds=np.array([r[9] for r in rows], dtype=np.float32),
        ).validate()

    # -- collision ---------------------------------------------------------------------
    def free(self, lo: np.ndarray, hi: np.ndarray, margin: float = 0.05) -> bool:
        if np.any(lo[:2] < -1e-6) or hi[0] > self.W + 1e-6 or hi[1] > self.D + 1e-6 or hi[2] > self.H:
            return False
        for olo, ohi in self.occupied:
            if np.all(lo[:2] < ohi[:2] + margin) and np.all(hi[:2] > olo[:2] - margin) and lo[2] < ohi[2] and hi[2] > olo[2]:
                return False
        return True

    @staticmethod
    def footprint(template: ObjectTemplate, origin: np.ndarray, yaw: float, z0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """World AABB of ``template`` placed at ``origin`` (+ ``z0`` up) with ``yaw``."""
        llo, lhi = template.local_bounds()
        corners = np.array([[x, y] for x in (llo[0], lhi[0]) for y in (llo[1], lhi[1])])
        c, s = np.cos(yaw), np.sin(yaw)
        xy = corners @ np.array([[c, s], [-s, c]]) + origin[:2]
        lo = np.array([*xy.min(axis=0), origin[2] + z0 + llo[2]])
        hi = np.array([*xy.max(axis=0), origin[2] + z0 + lhi[2]])
        return lo, hi

    # -- shell -------------------------------------------------------------------------
    def add_shell(self) -> None:
        W, D, H, t = self.W, self.D, self.H, self.t
        rng = self.rng
        floor_material = [Material.WOOD, Material.TILES, Material.CARPET][rng.integers(3)]
        floor_colors = wood_colors(rng) if floor_material == Material.WOOD else fabric_colors(rng) if floor_material == Material.CARPET else paint_colors(rng)
        floor_scale = {Material.WOOD: 0.12, Material.TILES: rng.uniform(0.3, 0.6), Material.CARPET: 0.5}[floor_material]
        wall_colors = paint_colors(rng)
        slab = lambda c, h, name, mat, colors, scale: Part(c, h, name, mat, colors[0], colors[1], scale)  # noqa: E731
        specs = [
            ("floor", slab((W / 2, D / 2, -t / 2), (W / 2 + t, D / 2 + t, t / 2), "floor", floor_material, floor_colors, floor_scale)),
            ("ceiling", slab((W / 2, D / 2, H + t / 2), (W / 2 + t, D / 2 + t, t / 2), "ceiling", Material.PAINT, paint_colors(rng), 0.8)),
            ("x_min", slab((-t / 2, D / 2, H / 2), (t / 2, D / 2 + t, H / 2), "wall", Material.PAINT, wall_colors, 0.6)),
            ("x_max", slab((W + t / 2, D / 2, H / 2), (t / 2, D / 2 + t, H / 2), "wall", Material.PAINT, wall_colors, 0.6)),
            ("y_min", slab((W / 2, -t / 2, H / 2), (W / 2, t / 2, H / 2), "wall", Material.PAINT, wall_colors, 0.6)),
            ("y_max", slab((W / 2, D + t / 2, H / 2), (W / 2, t / 2, H / 2), "wall", Material.PAINT, wall_colors, 0.6)),
        ]
        for name, part in specs:
            obj = self.add_object(name, [part], np.zeros(3), 0.0, object_class=part.class_name)
            self.shell[name] = obj.box_indices[0]

    def wall_length(self, wall: str) -> float:
        return self.D if wall in ("x_min", "x_max") else self.W

    def wall_origin(self, wall: str, s: float, depth: float) -> np.ndarray:
        """Point at tangent coordinate ``s`` on the inner face of ``wall``, moved ``depth`` inwards."""
        nx, ny = _NORMALS[wall]
        if wall == "x_min":
            return np.array([depth, s, 0.0])
        if wall == "x_max":
            return np.array([self.W - depth, s, 0.0])
        if wall == "y_min":
            return np.array([s, depth, 0.0])
        return np.array([s, self.D - depth, 0.0])

    # -- openings ----------------------------------------------------------------------
    def add_door(self) -> None:
        rng = self.rng
        for _ in range(50):
            wall = WALLS[rng.integers(4)]
            width, height = rng.uniform(0.8, 0.95), rng.uniform(2.0, 2.15)
            length = self.wall_length(wall)
            if length < width + 0.4:
                continue
            s = rng.uniform(width / 2 + 0.15, length - width / 2 - 0.15)
            origin = self.wall_origin(wall, s, 0.0)
            yaw = _YAW_FACING[wall]
            keep_out = ObjectTemplate("door", [], (width + 0.1, 0.9, height), "wall")
            lo, hi = self.footprint(keep_out, self.wall_origin(wall, s, 0.45), yaw)
            if not self.free(lo, hi, margin=0.0):
                continue
            wood, handle = wood_colors(rng), metal_colors(rng)
            parts = [
                Part((0, 0.0, height / 2), (width / 2, 0.03, height / 2), "door", Material.WOOD, wood[0], wood[1], 0.06),
                Part((width / 2 - 0.09, 0.06, 1.0), (0.05, 0.03, 0.012), "door", Material.METAL, handle[0], handle[1], 0.02),
            ]
            # frame: two posts and a lintel standing 2 cm proud of the wall
            frame = paint_colors(rng)
            parts += [
                Part((sx * (width / 2 + 0.03), 0.0, height / 2 + 0.015), (0.03, 0.02, height / 2 + 0.015), "door", Material.PAINT, frame[0], frame[1], 0.3)
                for sx in (-1, 1)
            ]
            parts.append(Part((0, 0.0, height + 0.015), (width / 2 + 0.06, 0.02, 0.015), "door", Material.PAINT, frame[0], frame[1], 0.3))
            self.add_object("door", parts, origin, yaw, object_class="door")
            self.occupied.append((lo, hi))
            return

    def add_window(self) -> None:
        rng = self.rng
        for _ in range(50):
            wall = WALLS[rng.integers(4)]
            width, height, sill = rng.uniform(0.8, 1.6), rng.uniform(0.9, 1.4), rng.uniform(0.75, 1.0)
            height = min(height, self.H - sill - 0.25)
            length = self.wall_length(wall)
            curtains = rng.uniform() < 0.6
            span = width + (0.9 if curtains else 0.1)
            if length < span + 0.3 or height < 0.5:
                continue
            s = rng.uniform(span / 2 + 0.1, length - span / 2 - 0.1)
            origin = self.wall_origin(wall, s, 0.0)
            yaw = _YAW_FACING[wall]
            keep_out = ObjectTemplate("window", [], (span, 0.3, height + 0.2), "wall")
            lo, hi = self.footprint(keep_out, self.wall_origin(wall, s, 0.15), yaw, z0=sill - 0.1)
            if not self.free(lo, hi, margin=0.0):
                continue
            frame = paint_colors(rng)
            glass = (np.array([0.6, 0.75, 0.95], np.float32), np.ones(3, np.float32))
            fc = (frame[0], frame[1])
            parts = [
                Part((0, -0.02, sill + height / 2), (width / 2, 0.03, height / 2), "window", Material.GLASS, glass[0], glass[1], 0.4),
                Part((0, 0.0, sill + height / 2), (0.025, 0.03, height / 2), "window", Material.PAINT, *fc, 0.3),
                Part((0, 0.03, sill - 0.02), (width / 2 + 0.06, 0.06, 0.02), "window", Material.PAINT, *fc, 0.3),
                Part((0, 0.0, sill + height + 0.025), (width / 2 + 0.05, 0.03, 0.025), "window", Material.PAINT, *fc, 0.3),
            ]
            parts += [Part((sx * (width / 2 + 0.025), 0.0, sill + height / 2), (0.025, 0.03, height / 2), "window", Material.PAINT, *fc, 0.3) for sx in (-1, 1)]
            self.add_object("window", parts, origin, yaw, object_class="window")
            self.occupied.append((lo, hi))
            if curtains:
                cloth = fabric_colors(rng)
                top = min(self.H - 0.05, sill + height + 0.2)
                for sx in (-1, 1):
                    cw = rng.uniform(0.3, 0.42)
                    x = sx * (width / 2 + 0.05 + cw / 2 - 0.08)
                    part = Part((x, 0.12, (top + 0.05) / 2), (cw / 2, 0.03, (top - 0.05) / 2), "curtain", Material.FABRIC, cloth[0], cloth[1], 0.25)
                    self.add_object("curtain", [part], origin, yaw, object_class="curtain")
                    clo, chi = self.footprint(ObjectTemplate("c", [], (cw, 0.2, top), "wall"), origin + yaw_rotation(yaw) @ np.array([x, 0.1, 0.0]), yaw)
                    self.occupied.append((clo, chi))
            return

    # -- furniture ---------------------------------------------------------------------
    def place(self, template: ObjectTemplate, attempts: int) -> bool:
        rng = self.rng
        for _ in range(attempts):
            if template.placement == "wall":
                wall = WALLS[rng.integers(4)]
                w, d, _ = template.size
                length = self.wall_length(wall)
                if length < w + 0.1:
                    continue
                s = rng.uniform(w / 2 + 0.02, length - w / 2 - 0.02)
                if rng.uniform() < 0.3:  # prefer corners now and then
                    s = w / 2 + 0.02 if rng.uniform() < 0.5 else length - w / 2 - 0.02
                origin = self.wall_origin(wall, s, d / 2 + 0.005)
                yaw = _YAW_FACING[wall]
                z0 = 0.0
            elif template.placement == "wall_mounted":
                wall = WALLS[rng.integers(4)]
                w, d, _ = template.size
                length = self.wall_length(wall)
                if length < w + 0.2:
                    continue
                s = rng.uniform(w / 2 + 0.1, length - w / 2 - 0.1)
                origin = self.wall_origin(wall, s, d / 2)
                yaw = _YAW_FACING[wall]
                z0 = template.mount_height
                if z0 + template.size[2] > self.H - 0.15:
                    z0 = self.H - 0.15 - template.size[2]
            elif template.placement == "floor":
                w, d, _ = template.size
                r = 0.5 * np.hypot(w, d)
                if min(self.W, self.D) < 2 * r + 0.2:
                    return False
                origin = np.array([rng.uniform(r + 0.1, self.W - r - 0.1), rng.uniform(r + 0.1, self.D - r - 0.1), 0.0])
                yaw = rng.integers(4) * np.pi / 2 + rng.uniform(-0.2, 0.2)
                z0 = 0.0
            else:
                raise ConfigError(f"template '{template.name}' has unknown placement '{template.placement}'")
            origin = origin + np.array([0.0, 0.0, z0])
            lo, hi = self.footprint(template, origin, yaw)
            if not self.free(lo, hi):
                continue
            self.commit(template, origin, yaw, lo, hi)
            return True
        return False

    def commit(self, template: ObjectTemplate, origin: np.ndarray, yaw: float, lo: np.ndarray, hi: np.ndarray) -> None:
        self.add_object(template.name, template.parts, origin, yaw)
        self.occupied.append((lo, hi))
        R = yaw_rotation(yaw)[:2, :2]
        w, d, _ = template.size
        if template.support_height is not None:
            self.supports.append((origin[:2], np.array([w / 2, d / 2]), yaw, template.support_height))
        if template.name in ("table", "desk"):
            offsets = [(0.0, 1.0)] if template.name == "desk" else [(x, sy) for sy in (-1.0, 1.0) for x in ((-0.25, 0.25) if w > 1.2 else (0.0,))]
            for x, sy in offsets:
                local = np.array([x * w, sy * (d / 2 + 0.3)])
                seat_yaw = yaw + (np.pi if sy > 0 else 0.0)  # chair front (+y) faces the table
                self.seats.append((origin[:2] + R @ local, seat_yaw))

    def place_chair(self, template: ObjectTemplate, attempts: int) -> bool:
        order = self.rng.permutation(len(self.seats))
        for i in order:
            xy, yaw = self.seats[i]
            yaw = yaw + self.rng.uniform(-0.25, 0.25)
            origin = np.array([xy[0], xy[1], 0.0])
            lo, hi = self.footprint(template, origin, yaw)
            if self.free(lo, hi, margin=0.0):
                self.commit(template, origin, yaw, lo, hi)
                self.seats.pop(int(i))
                return True
        return self.place(template, attempts)

    def place_small_objects(self) -> None:
        rng = self.rng
        for center, half, yaw, z in self.supports:
            for _ in range(int(rng.integers(0, 4))):
                template = TEMPLATES["small_object"](rng)
                w, d, h = template.size
                if half[0] < w / 2 + 0.03 or half[1] < d / 2 + 0.03:
                    continue
                for _ in range(10):
                    local = np.array([rng.uniform(-half[0] + w / 2 + 0.02, half[0] - w / 2 - 0.02), rng.uniform(-half[1] + d / 2 + 0.02, half[1] - d / 2 - 0.02)])
                    xy = center + yaw_rotation(yaw)[:2, :2] @ local
                    obj_yaw = yaw + rng.uniform(-0.5, 0.5)
                    origin = np.array([xy[0], xy[1], z])
                    lo, hi = self.footprint(template, origin, obj_yaw)
                    if self.free(lo, hi, margin=0.01):
                        self.add_object(template.name, template.parts, origin, obj_yaw)
                        self.occupied.append((lo, hi))
                        break


def generate_scene(seed: int, config: SceneConfig | None = None, taxonomy: ClassTaxonomy | None = None) -> Scene:
    """A furnished room, identical for identical ``(seed, config, taxonomy)``."""
    config = (config or SceneConfig()).validate()
    taxonomy = taxonomy or ClassTaxonomy.load()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5C3E]))
    room_type = config.room_type or list(ROOM_TYPES)[int(rng.integers(len(ROOM_TYPES)))]
    lo_size, hi_size = config.min_room_size, config.max_room_size
    if room_type == "bathroom":
        hi_size = max(lo_size, min(hi_size, 3.5))
    size = (float(rng.uniform(lo_size, hi_size)), float(rng.uniform(lo_size, hi_size)), float(rng.uniform(config.min_height, config.max_height)))
    builder = _Builder(taxonomy, rng, size, config.wall_thickness)
    builder.add_shell()
    builder.add_door()
    for _ in range(int(rng.integers(0, config.max_windows + 1))):
        builder.add_window()
    for name, probability, count in ROOM_TYPES[room_type]:
        for _ in range(count):
            if rng.uniform() >= min(1.0, probability * config.furniture_density):
                continue
            template = TEMPLATES[name](rng)
            if name == "chair":
                builder.place_chair(template, config.placement_attempts)
            else:
                builder.place(template, config.placement_attempts)
    if config.small_objects:
        builder.place_small_objects()
    light = np.array([size[0] * rng.uniform(0.35, 0.65), size[1] * rng.uniform(0.35, 0.65), size[2] - 0.3])
    return Scene(
        room_size=size,
        wall_thickness=config.wall_thickness,
        boxes=builder.build(),
        objects=builder.objects,
        taxonomy=taxonomy,
        shell=builder.shell,
        light_position=light,
        seed=int(seed),
        room_type=room_type,
    )


def simple_scene(
    room_size: tuple[float, float, float] = (4.0, 3.0, 2.5),
    boxes: list[tuple[str, tuple, tuple, float]] = (),
    taxonomy: ClassTaxonomy | None = None,
    wall_thickness: float = 0.1,
) -> Scene:
    """A hand-made room for analytic tests: the shell plus the given boxes, one object each.

    boxes: ``(class_name, center (3,), half_extents (3,), yaw)`` in world metres / radians.
    No doors, windows or random furniture; colors are fixed (seed 0).
    """
    taxonomy = taxonomy or ClassTaxonomy.load()
    rng = np.random.default_rng(0)
    builder = _Builder(taxonomy, rng, tuple(float(v) for v in room_size), wall_thickness)
    builder.add_shell()
    for class_name, center, half, yaw in boxes:
        colors = paint_colors(rng, light=False)
        part = Part((0.0, 0.0, 0.0), tuple(map(float, half)), class_name, Material.PAINT, colors[0], colors[1], 0.2)
        builder.add_object(class_name, [part], np.asarray(center, dtype=np.float64), float(yaw))
    W, D, H = room_size
    return Scene(
        room_size=tuple(float(v) for v in room_size), wall_thickness=wall_thickness, boxes=builder.build(),
        objects=builder.objects, taxonomy=taxonomy, shell=builder.shell,
        light_position=np.array([W / 2, D / 2, H - 0.3]), seed=0, room_type="simple",
    )
