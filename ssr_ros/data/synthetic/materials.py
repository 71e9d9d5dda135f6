"""Procedural surface colors: textures that carry information, and view-independent shading.

Every box has a material kind, two colors, a pattern scale and a random phase. The color of
a surface point depends on the material, the point's position on the box face (so wood
grain, tiles, fabric weave, book spines and paintings vary across a surface and between
instances of one class) and on a fixed Lambertian lighting of the room (a point light under
the ceiling plus ambient), which is view-independent so that fused colors stay consistent.
"""

from __future__ import annotations

from enum import IntEnum

import torch


class Material(IntEnum):
    """Procedural pattern kinds."""

    PAINT = 0  # flat paint with faint mottling (walls, ceilings, appliances)
    WOOD = 1  # grain stripes along the box's longest face axis
    TILES = 2  # square tiles with dark grout lines (floors, bathrooms)
    FABRIC = 3  # fine weave and soft blotches (sofas, beds, curtains)
    PAINTING = 4  # colorful smooth blobs (pictures)
    GLASS = 5  # bright sky gradient (windows)
    BOOKS = 6  # vertical bands of random colors (book spines)
    METAL = 7  # brushed streaks, slightly glossy-looking (handles, lamps, fridges)
    CARPET = 8  # high-frequency speckle


def _hash(x: torch.Tensor) -> torch.Tensor:
    """Pseudo-random value in [0, 1) of a float tensor (deterministic, elementwise)."""
    return torch.frac(torch.sin(x * 12.9898 + 78.233) * 43758.5453).abs()


def _value_noise(u: torch.Tensor, v: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Smooth 2D value noise in [0, 1): bilinear interpolation of hashed lattice values."""
    iu, iv = torch.floor(u), torch.floor(v)
    fu, fv = u - iu, v - iv
    fu = fu * fu * (3 - 2 * fu)
    fv = fv * fv * (3 - 2 * fv)

    def corner(du: float, dv: float) -> torch.Tensor:
        return _hash((iu + du) * 1.7 + (iv + dv) * 31.3 + seed * 7.1)

    top = corner(0, 0) * (1 - fu) + corner(1, 0) * fu
    bottom = corner(0, 1) * (1 - fu) + corner(1, 1) * fu
    return top * (1 - fv) + bottom * fv


def face_coordinates(local: torch.Tensor, axis: torch.Tensor, half_extents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """In-plane coordinates (u, v) in metres of points on a box face.

    local: (P, 3) box-frame points; axis: (P,) index of the face normal axis; half_extents:
    (P, 3). ``u`` runs along the longer in-plane axis, ``v`` along the other, both from the
    face's corner (so patterns are aligned with the box).
    """
    shifted = local + half_extents
    a = torch.remainder(axis + 1, 3)
    b = torch.remainder(axis + 2, 3)
    ua = shifted.gather(1, a[:, None])[:, 0]
    ub = shifted.gather(1, b[:, None])[:, 0]
    ha = half_extents.gather(1, a[:, None])[:, 0]
    hb = half_extents.gather(1, b[:, None])[:, 0]
    a_longer = ha >= hb
    return torch.where(a_longer, ua, ub), torch.where(a_longer, ub, ua)


def albedo(
    material: torch.Tensor,
    base: torch.Tensor,
    secondary: torch.Tensor,
    scale: torch.Tensor,
    seed: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    world: torch.Tensor,
) -> torch.Tensor:
    """(P, 3) surface albedo in [0, 1] of P surface points.

    material: (P,) int64 ``Material``; base, secondary: (P, 3) colors; scale: (P,) pattern
    length in metres; seed: (P,) random phase; u, v: (P,) face coordinates (metres);
    world: (P, 3) world-frame points (floors tile in world coordinates).
    """
    out = base.clone()
    present = torch.nonzero(torch.bincount(material, minlength=len(Material)))[:, 0]
    for kind in present.tolist():
        idx = torch.nonzero(material == kind)[:, 0]
        colour = _pattern(
            Material(kind), base.index_select(0, idx), secondary.index_select(0, idx), scale.index_select(0, idx).clamp(min=1e-3),
            seed.index_select(0, idx), u.index_select(0, idx), v.index_select(0, idx), world.index_select(0, idx),
        )
        out.index_copy_(0, idx, colour)
    return out.clamp(0, 1)


def shade(albedo_rgb: torch.Tensor, world: torch.Tensor, normals: torch.Tensor, light_position: torch.Tensor) -> torch.Tensor:
    """(P, 3) lit color: ambient 0.5 plus Lambertian 0.55 from a point light (no falloff).

    world, normals: (P, 3) world-frame points and unit normals; light_position: (3,).
    """
    to_light = light_position[None] - world
    to_light = to_light / to_light.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    lambert = (to_light * normals).sum(dim=-1).clamp(min=0)
    return (albedo_rgb * (0.5 + 0.55 * lambert)[:, None]).clamp(0, 1)


def _pattern(kind: Material, base, secondary, s, seed, u, v, world) -> torch.Tensor:
    """(P, 3) albedo of P points that all have material ``kind`` (arguments as in ``albedo``)."""

    def blend(t: torch.Tensor) -> torch.Tensor:
        t = t.clamp(0, 1)[:, None]
        return base * (1 - t) + secondary * t

    if kind == Material.PAINT:
        return base * (0.93 + 0.1 * _value_noise(u / s, v / s, seed)[:, None])
    if kind == Material.WOOD:
        warp = _value_noise(u / (4 * s), v / s, seed)
        grain = 0.5 + 0.5 * torch.sin((v / s + 3.0 * warp) * 6.2832)
        return blend(grain**3)
    if kind == Material.TILES:
        tx, ty = world[:, 0] / s, world[:, 1] / s
        fx, fy = torch.frac(tx), torch.frac(ty)
        checker = torch.remainder(torch.floor(tx) + torch.floor(ty), 2)
        tile = blend(0.25 * checker + 0.15 * _hash(torch.floor(tx) * 3.1 + torch.floor(ty) * 7.7 + seed))
        grout = ((fx < 0.04) | (fx > 0.96) | (fy < 0.04) | (fy > 0.96))[:, None]
        return torch.where(grout, tile * 0.45, tile)
    if kind == Material.FABRIC:
        weave = torch.sin(u * 400.0) * torch.sin(v * 400.0)
        return blend(_value_noise(u / s, v / s, seed) * 0.6) * (0.94 + 0.06 * weave[:, None])
    if kind == Material.PAINTING:
        uu, vv = u / s, v / s
        channels = [
            0.5 + 0.5 * torch.sin(uu * (2.0 + k) + vv * (1.3 + 0.7 * k) + seed * (3.0 + k) + 2.1 * _value_noise(uu, vv, seed + k))
            for k in range(3)
        ]
        return torch.stack(channels, dim=-1) * 0.8 + 0.1
    if kind == Material.GLASS:
        height = (world[:, 2] - 0.8).clamp(0, 1.5) / 1.5
        sky = torch.stack([0.55 + 0.25 * height, 0.7 + 0.2 * height, 0.95 * torch.ones_like(height)], dim=-1)
        clouds = _value_noise(u / s, v / s, seed)[:, None]
        return (sky * (1 - 0.35 * clouds) + 0.35 * clouds).clamp(0, 1)
    if kind == Material.BOOKS:
        band = torch.floor(u / s + seed)
        color = torch.stack([_hash(band * 1.3 + k * 17.0 + seed) for k in range(3)], dim=-1)
        edge = (torch.frac(u / s + seed) < 0.08)[:, None]
        return torch.where(edge, color * 0.3, 0.15 + 0.75 * color)
    if kind == Material.METAL:
        return blend(_value_noise(u / s, v * 200.0, seed) * 0.5)
    if kind == Material.CARPET:
        speckle = _hash(torch.floor(world[:, 0] * 300.0) * 0.37 + torch.floor(world[:, 1] * 300.0) * 1.91 + seed)
        blotch = _value_noise(world[:, 0] / s, world[:, 1] / s, seed)
        return blend(0.4 * blotch + 0.3 * speckle)
    return base
