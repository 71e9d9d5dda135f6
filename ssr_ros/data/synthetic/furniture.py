"""Parametric furniture templates built from oriented boxes.

A template is a function ``(rng) -> ObjectTemplate``. Parts are given in the object frame:
origin at the centre of the footprint on the floor, x along the width, y along the depth
with the back at ``y = -depth / 2`` (the side placed against a wall) and the front facing
+y, z up. Each part names its taxonomy class (resolved by name when the scene is built, so
templates work with any taxonomy that has the name, falling back to ``otherfurniture``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ssr_ros.data.synthetic.materials import Material


@dataclass
class Part:
    """One box of an object: centre and half extents in the object frame, metres."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    class_name: str
    material: Material
    color: np.ndarray
    secondary: np.ndarray
    scale: float


@dataclass
class ObjectTemplate:
    """A furnished object before placement.

    size: (width, depth, height) of its bounding box, metres.
    placement: ``"wall"`` (back against a wall), ``"floor"`` (anywhere, small random yaw),
        ``"wall_mounted"`` (hung on a wall at ``mount_height`` of its bottom edge) or
        ``"on_surface"`` (on top of a table, desk, counter or cabinet).
    support_height: height of a top surface small objects may stand on (None: none).
    """

    name: str
    parts: list[Part]
    size: tuple[float, float, float]
    placement: str
    support_height: float | None = None
    mount_height: float = 0.0
    extras: dict = field(default_factory=dict)

    def local_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Object-frame AABB ``(lo, hi)`` of the declared size and of every part."""
        w, d, h = self.size
        lo = np.array([-w / 2, -d / 2, 0.0])
        hi = np.array([w / 2, d / 2, h])
        for part in self.parts:
            c, half = np.asarray(part.center), np.asarray(part.half)
            lo = np.minimum(lo, c - half)
            hi = np.maximum(hi, c + half)
        return lo, hi


# --- color palettes -------------------------------------------------------------------

def _jitter(rng: np.random.Generator, color, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(color, dtype=np.float32) + rng.uniform(-amount, amount, 3), 0, 1).astype(np.float32)


def wood_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    tones = [(0.55, 0.36, 0.2), (0.72, 0.55, 0.36), (0.36, 0.22, 0.12), (0.82, 0.7, 0.52), (0.45, 0.3, 0.22)]
    base = _jitter(rng, tones[rng.integers(len(tones))])
    return base, np.clip(base * 0.7, 0, 1).astype(np.float32)


def fabric_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.2, 0.7)
    val = rng.uniform(0.35, 0.85)
    base = _hsv(hue, sat, val)
    return base, _hsv((hue + rng.uniform(-0.08, 0.08)) % 1, sat * 0.8, val * 0.8)


def paint_colors(rng: np.random.Generator, light: bool = True) -> tuple[np.ndarray, np.ndarray]:
    hue = rng.uniform(0, 1)
    base = _hsv(hue, rng.uniform(0.02, 0.25), rng.uniform(0.75, 0.95) if light else rng.uniform(0.3, 0.7))
    return base, base * 0.9


def metal_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    g = rng.uniform(0.45, 0.85)
    base = _jitter(rng, (g, g, g * 1.03), 0.03)
    return base, base * 0.8


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, dtype=np.float32)


def _part(center, half, class_name, material, colors, scale) -> Part:
    return Part(tuple(map(float, center)), tuple(map(float, half)), class_name, material, colors[0], colors[1], float(scale))


# --- templates ------------------------------------------------------------------------

def table(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(0.9, 1.6), rng.uniform(0.6, 0.95), rng.uniform(0.72, 0.78)
    top_t, leg = 0.04, rng.uniform(0.04, 0.07)
    colors = wood_colors(rng)
    parts = [_part((0, 0, h - top_t / 2), (w / 2, d / 2, top_t / 2), "table", Material.WOOD, colors, 0.05)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(_part((sx * (w / 2 - leg), sy * (d / 2 - leg), (h - top_t) / 2), (leg / 2, leg / 2, (h - top_t) / 2), "table", Material.WOOD, colors, 0.03))
    return ObjectTemplate("table", parts, (w, d, h), "floor", support_height=h)


def coffee_table(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(0.8, 1.2), rng.uniform(0.45, 0.7), rng.uniform(0.38, 0.48)
    colors = wood_colors(rng)
    parts = [
        _part((0, 0, h - 0.03), (w / 2, d / 2, 0.03), "table", Material.WOOD, colors, 0.04),
        _part((0, 0, (h - 0.06) / 2), (w / 2 - 0.05, d / 2 - 0.05, (h - 0.06) / 2), "table", Material.WOOD, (colors[1], colors[0]), 0.04),
    ]
    return ObjectTemplate("coffee_table", parts, (w, d, h), "floor", support_height=h)


def chair(rng: np.random.Generator) -> ObjectTemplate:
    w, d = rng.uniform(0.42, 0.52), rng.uniform(0.42, 0.52)
    seat_h, back_h = rng.uniform(0.42, 0.48), rng.uniform(0.35, 0.5)
    leg = 0.035
    frame = wood_colors(rng) if rng.uniform() < 0.6 else metal_colors(rng)
    cushion = fabric_colors(rng)
    parts = [_part((0, 0, seat_h - 0.03), (w / 2, d / 2, 0.03), "chair", Material.FABRIC, cushion, 0.15)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(_part((sx * (w / 2 - leg), sy * (d / 2 - leg), (seat_h - 0.06) / 2), (leg / 2, leg / 2, (seat_h - 0.06) / 2), "chair", Material.WOOD, frame, 0.02))
    parts.append(_part((0, -d / 2 + 0.025, seat_h + back_h / 2), (w / 2, 0.025, back_h / 2), "chair", Material.WOOD, frame, 0.03))
    return ObjectTemplate("chair", parts, (w, d, seat_h + back_h), "floor")


def bed(rng: np.random.Generator) -> ObjectTemplate:
    w, d = rng.choice([0.95, 1.45, 1.65]) + rng.uniform(-0.05, 0.05), rng.uniform(1.95, 2.15)
    base_h, matt_h, head_h = rng.uniform(0.25, 0.35), rng.uniform(0.18, 0.25), rng.uniform(0.8, 1.1)
    frame, sheet, pillow = wood_colors(rng), fabric_colors(rng), paint_colors(rng)
    parts = [
        _part((0, 0.03, base_h / 2), (w / 2, d / 2 - 0.03, base_h / 2), "bed", Material.WOOD, frame, 0.06),
        _part((0, 0.03, base_h + matt_h / 2), (w / 2 - 0.02, d / 2 - 0.05, matt_h / 2), "bed", Material.FABRIC, sheet, 0.3),
        _part((0, -d / 2 + 0.03, head_h / 2), (w / 2, 0.03, head_h / 2), "bed", Material.WOOD, frame, 0.06),
    ]
    n_pillows = 1 if w < 1.2 else 2
    for k in range(n_pillows):
        x = 0.0 if n_pillows == 1 else (k - 0.5) * w / 2
        parts.append(_part((x, -d / 2 + 0.25, base_h + matt_h + 0.06), (min(0.3, w / 4 - 0.02) if n_pillows == 2 else 0.3, 0.18, 0.06), "bed", Material.FABRIC, pillow, 0.1))
    return ObjectTemplate("bed", parts, (w, d, head_h), "wall")


def sofa(rng: np.random.Generator) -> ObjectTemplate:
    w, d = rng.uniform(1.5, 2.3), rng.uniform(0.8, 0.95)
    seat_h, back_h, arm_w = rng.uniform(0.4, 0.46), rng.uniform(0.75, 0.9), rng.uniform(0.12, 0.2)
    cover, cushion = fabric_colors(rng), fabric_colors(rng)
    parts = [
        _part((0, 0, seat_h / 2 - 0.05), (w / 2, d / 2, seat_h / 2 - 0.05), "sofa", Material.FABRIC, cover, 0.3),
        _part((0, -d / 2 + 0.1, back_h / 2), (w / 2, 0.1, back_h / 2), "sofa", Material.FABRIC, cover, 0.3),
    ]
    for sx in (-1, 1):
        parts.append(_part((sx * (w / 2 - arm_w / 2), 0.05, 0.3), (arm_w / 2, d / 2 - 0.05, 0.3), "sofa", Material.FABRIC, cover, 0.3))
    n = 2 if w < 1.9 else 3
    inner = w - 2 * arm_w
    for k in range(n):
        x = -inner / 2 + inner * (k + 0.5) / n
        parts.append(_part((x, 0.07, seat_h - 0.05), (inner / (2 * n) - 0.01, d / 2 - 0.17, 0.05), "sofa", Material.FABRIC, cushion, 0.2))
    return ObjectTemplate("sofa", parts, (w, d, back_h), "wall")


def cabinet(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.6), rng.uniform(0.7, 1.9)
    body = wood_colors(rng) if rng.uniform() < 0.6 else paint_colors(rng)
    handle = metal_colors(rng)
    parts = [_part((0, 0, h / 2), (w / 2, d / 2 - 0.01, h / 2), "cabinet", Material.WOOD if body[0][0] != body[0][2] else Material.PAINT, body, 0.05)]
    n_doors = 1 if w < 0.65 else 2
    for k in range(n_doors):
        x = -w / 2 + w * (k + 0.5) / n_doors
        parts.append(_part((x, d / 2 - 0.005, h / 2 + 0.02), (w / (2 * n_doors) - 0.01, 0.01, h / 2 - 0.04), "cabinet", Material.WOOD, (body[1], body[0]), 0.04))
        hx = x + (0.35 if k == 0 else -0.35) * w / n_doors
        parts.append(_part((hx, d / 2 + 0.015, h * 0.55), (0.01, 0.015, 0.06), "cabinet", Material.METAL, handle, 0.02))
    return ObjectTemplate("cabinet", parts, (w, d, h), "wall", support_height=h if h < 1.2 else None)


def bookshelf(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(0.7, 1.2), rng.uniform(0.28, 0.38), rng.uniform(1.5, 2.1)
    frame = wood_colors(rng)
    t = 0.02
    parts = [
        _part((-w / 2 + t / 2, 0, h / 2), (t / 2, d / 2, h / 2), "bookshelf", Material.WOOD, frame, 0.05),
        _part((w / 2 - t / 2, 0, h / 2), (t / 2, d / 2, h / 2), "bookshelf", Material.WOOD, frame, 0.05),
        _part((0, -d / 2 + t / 2, h / 2), (w / 2 - t, t / 2, h / 2), "bookshelf", Material.WOOD, frame, 0.05),
    ]
    n_shelves = int(rng.integers(4, 6))
    gap = (h - t) / n_shelves
    for k in range(n_shelves + 1):
        z = min(k * gap + t / 2, h - t / 2)
        parts.append(_part((0, t / 2, z), (w / 2 - t, d / 2 - t / 2, t / 2), "bookshelf", Material.WOOD, frame, 0.05))
    book_colors = (np.array([0.5, 0.3, 0.2], np.float32), np.array([0.2, 0.2, 0.5], np.float32))
    for k in range(n_shelves):
        fill = rng.uniform(0.4, 0.95)
        book_h = min(gap - 0.04, rng.uniform(0.18, 0.28))
        x0 = -w / 2 + t + (w - 2 * t) * rng.uniform(0, 1 - fill)
        bw = (w - 2 * t) * fill
        parts.append(_part((x0 + bw / 2, t + 0.02, k * gap + t + book_h / 2), (bw / 2, d / 2 - t - 0.02, book_h / 2), "bookshelf", Material.BOOKS, book_colors, rng.uniform(0.025, 0.045)))
    return ObjectTemplate("bookshelf", parts, (w, d, h), "wall")


def desk(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(1.0, 1.6), rng.uniform(0.55, 0.75), rng.uniform(0.72, 0.76)
    colors = wood_colors(rng) if rng.uniform() < 0.7 else paint_colors(rng)
    handle = metal_colors(rng)
    parts = [
        _part((0, 0, h - 0.02), (w / 2, d / 2, 0.02), "desk", Material.WOOD, colors, 0.05),
        _part((-w / 2 + 0.02, 0, (h - 0.04) / 2), (0.02, d / 2 - 0.02, (h - 0.04) / 2), "desk", Material.WOOD, colors, 0.05),
        _part((w / 2 - 0.22, 0, (h - 0.04) / 2), (0.2, d / 2 - 0.02, (h - 0.04) / 2), "desk", Material.WOOD, colors, 0.05),
        _part((0, -d / 2 + 0.02, h * 0.6), (w / 2 - 0.04, 0.01, h * 0.25), "desk", Material.WOOD, colors, 0.05),
    ]
    for k in range(3):
        parts.append(_part((w / 2 - 0.22, d / 2 - 0.01, (h - 0.04) * (k + 0.5) / 3), (0.015, 0.012, 0.012), "desk", Material.METAL, handle, 0.02))
    return ObjectTemplate("desk", parts, (w, d, h), "wall", support_height=h)


def picture(rng: np.random.Generator) -> ObjectTemplate:
    w, h = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
    frame = wood_colors(rng) if rng.uniform() < 0.5 else metal_colors(rng)
    art = (np.zeros(3, np.float32), np.ones(3, np.float32))
    parts = [
        _part((0, 0, h / 2), (w / 2, 0.015, h / 2), "picture", Material.WOOD, frame, 0.02),
        _part((0, 0.02, h / 2), (w / 2 - 0.04, 0.006, h / 2 - 0.04), "picture", Material.PAINTING, art, rng.uniform(0.05, 0.2)),
    ]
    return ObjectTemplate("picture", parts, (w, 0.052, h), "wall_mounted", mount_height=rng.uniform(1.1, 1.6))


def floor_lamp(rng: np.random.Generator) -> ObjectTemplate:
    h = rng.uniform(1.4, 1.8)
    metal, shade = metal_colors(rng), paint_colors(rng)
    r = rng.uniform(0.15, 0.22)
    parts = [
        _part((0, 0, 0.015), (0.14, 0.14, 0.015), "lamp", Material.METAL, metal, 0.05),
        _part((0, 0, h / 2), (0.012, 0.012, h / 2 - 0.03), "lamp", Material.METAL, metal, 0.05),
        _part((0, 0, h - 0.12), (r, r, 0.12), "lamp", Material.FABRIC, shade, 0.1),
    ]
    return ObjectTemplate("floor_lamp", parts, (2 * r, 2 * r, h), "floor")


def refrigerator(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(0.6, 0.8), rng.uniform(0.6, 0.7), rng.uniform(1.6, 1.9)
    body, handle = (paint_colors(rng) if rng.uniform() < 0.5 else metal_colors(rng)), metal_colors(rng)
    split = h * 0.62
    parts = [
        _part((0, 0, h / 2), (w / 2, d / 2 - 0.02, h / 2), "refrigerator", Material.METAL, body, 0.3),
        _part((0, d / 2 - 0.01, split / 2 + 0.01), (w / 2 - 0.01, 0.01, split / 2 - 0.02), "refrigerator", Material.METAL, body, 0.3),
        _part((0, d / 2 - 0.01, split + (h - split) / 2), (w / 2 - 0.01, 0.01, (h - split) / 2 - 0.02), "refrigerator", Material.METAL, body, 0.3),
        _part((w / 2 - 0.06, d / 2 + 0.02, split - 0.25), (0.012, 0.02, 0.2), "refrigerator", Material.METAL, handle, 0.05),
    ]
    return ObjectTemplate("refrigerator", parts, (w, d + 0.04, h), "wall")


def counter(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(1.2, 2.4), rng.uniform(0.58, 0.65), rng.uniform(0.88, 0.92)
    body, top = wood_colors(rng), paint_colors(rng, light=bool(rng.uniform() < 0.5))
    parts = [
        _part((0, -0.02, (h - 0.04) / 2), (w / 2, d / 2 - 0.02, (h - 0.04) / 2), "counter", Material.WOOD, body, 0.05),
        _part((0, 0, h - 0.02), (w / 2, d / 2, 0.02), "counter", Material.PAINT, top, 0.03),
    ]
    if rng.uniform() < 0.7:
        sx = rng.uniform(-w / 2 + 0.35, w / 2 - 0.35)
        parts.append(_part((sx, 0.0, h + 0.07), (0.25, 0.2, 0.07), "sink", Material.METAL, metal_colors(rng), 0.1))
        parts.append(_part((sx, -0.2, h + 0.2), (0.015, 0.015, 0.12), "sink", Material.METAL, metal_colors(rng), 0.05))
    return ObjectTemplate("counter", parts, (w, d, h), "wall", support_height=None)


def toilet(rng: np.random.Generator) -> ObjectTemplate:
    ceramic = paint_colors(rng)
    parts = [
        _part((0, -0.28, 0.55), (0.2, 0.09, 0.2), "toilet", Material.PAINT, ceramic, 0.1),
        _part((0, 0.02, 0.2), (0.14, 0.2, 0.2), "toilet", Material.PAINT, ceramic, 0.1),
        _part((0, 0.05, 0.41), (0.19, 0.25, 0.02), "toilet", Material.PAINT, ceramic, 0.1),
    ]
    return ObjectTemplate("toilet", parts, (0.4, 0.74, 0.75), "wall")


def bathtub(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(1.5, 1.75), rng.uniform(0.7, 0.8), rng.uniform(0.5, 0.6)
    ceramic, curtain = paint_colors(rng), fabric_colors(rng)
    parts = [
        _part((0, 0, 0.06), (w / 2, d / 2, 0.06), "bathtub", Material.PAINT, ceramic, 0.1),
        _part((0, -d / 2 + 0.04, h / 2), (w / 2, 0.04, h / 2), "bathtub", Material.PAINT, ceramic, 0.1),
        _part((0, d / 2 - 0.04, h / 2), (w / 2, 0.04, h / 2), "bathtub", Material.PAINT, ceramic, 0.1),
        _part((-w / 2 + 0.04, 0, h / 2), (0.04, d / 2 - 0.08, h / 2), "bathtub", Material.PAINT, ceramic, 0.1),
        _part((w / 2 - 0.04, 0, h / 2), (0.04, d / 2 - 0.08, h / 2), "bathtub", Material.PAINT, ceramic, 0.1),
        _part((0.3 * w, d / 2 - 0.02, h + 0.75), (0.2 * w, 0.01, 0.7), "shower curtain", Material.FABRIC, curtain, 0.15),
    ]
    return ObjectTemplate("bathtub", parts, (w, d, h + 1.45), "wall")


def small_object(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(0.06, 0.25), rng.uniform(0.06, 0.2), rng.uniform(0.05, 0.3)
    colors = fabric_colors(rng) if rng.uniform() < 0.5 else paint_colors(rng, light=False)
    material = Material.PAINT if rng.uniform() < 0.5 else Material.METAL
    return ObjectTemplate("small_object", [_part((0, 0, h / 2), (w / 2, d / 2, h / 2), "otherfurniture", material, colors, 0.05)], (w, d, h), "on_surface")


def nightstand(rng: np.random.Generator) -> ObjectTemplate:
    w, d, h = rng.uniform(0.4, 0.55), rng.uniform(0.35, 0.45), rng.uniform(0.45, 0.6)
    colors, handle = wood_colors(rng), metal_colors(rng)
    parts = [
        _part((0, 0, h / 2), (w / 2, d / 2 - 0.01, h / 2), "otherfurniture", Material.WOOD, colors, 0.05),
        _part((0, d / 2 + 0.005, h * 0.7), (0.05, 0.015, 0.012), "otherfurniture", Material.METAL, handle, 0.02),
    ]
    return ObjectTemplate("nightstand", parts, (w, d + 0.02, h), "wall", support_height=h)


TEMPLATES: dict[str, Callable[[np.random.Generator], ObjectTemplate]] = {
    "table": table,
    "coffee_table": coffee_table,
    "chair": chair,
    "bed": bed,
    "sofa": sofa,
    "cabinet": cabinet,
    "bookshelf": bookshelf,
    "desk": desk,
    "picture": picture,
    "floor_lamp": floor_lamp,
    "refrigerator": refrigerator,
    "counter": counter,
    "toilet": toilet,
    "bathtub": bathtub,
    "small_object": small_object,
    "nightstand": nightstand,
}
"""All templates by name."""

ROOM_TYPES: dict[str, list[tuple[str, float, int]]] = {
    # (template, probability of each try, maximum count)
    "bedroom": [("bed", 1.0, 1), ("nightstand", 0.8, 2), ("cabinet", 0.8, 2), ("desk", 0.5, 1), ("chair", 0.5, 1),
                ("bookshelf", 0.5, 1), ("picture", 0.9, 3), ("floor_lamp", 0.5, 1)],
    "living_room": [("sofa", 1.0, 2), ("coffee_table", 0.9, 1), ("bookshelf", 0.8, 2), ("cabinet", 0.6, 2),
                    ("table", 0.5, 1), ("chair", 0.6, 4), ("picture", 0.9, 3), ("floor_lamp", 0.7, 2)],
    "office": [("desk", 1.0, 3), ("chair", 1.0, 4), ("bookshelf", 0.9, 2), ("cabinet", 0.8, 3), ("table", 0.4, 1),
               ("picture", 0.7, 2), ("floor_lamp", 0.3, 1)],
    "kitchen": [("counter", 1.0, 2), ("refrigerator", 0.9, 1), ("cabinet", 0.8, 2), ("table", 0.9, 1),
                ("chair", 0.9, 4), ("picture", 0.5, 2)],
    "bathroom": [("bathtub", 0.9, 1), ("toilet", 1.0, 1), ("counter", 0.8, 1), ("cabinet", 0.6, 1), ("picture", 0.4, 1)],
}
"""What each room type may contain, in placement order (big items first)."""
