"""Titles and legends drawn onto images with Pillow (fast; no plotting library), so that every
picture ssr_ros writes says what it shows.

:func:`annotate` adds a title bar above an image and a legend of color swatches below it;
:func:`class_legend` and :data:`PROVENANCE_LEGEND` build the usual legends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

TEXT_RGB = (235, 235, 235)
BAR_RGB = (18, 18, 18)
OBSERVED_RGB = (170, 170, 170)
PREDICTED_RGB = (255, 140, 0)
UNKNOWN_CLASS_RGB = (95, 95, 110)
"""How surface without class evidence (class 0) is drawn, so that its shape still reads."""
PROVENANCE_LEGEND = [("observed (measured)", OBSERVED_RGB), ("predicted (completion)", PREDICTED_RGB)]

LegendEntry = tuple[str, Sequence[int]]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def class_legend(labels: Iterable[int] | np.ndarray, taxonomy) -> list[LegendEntry]:
    """Legend entries (name, color) for the class ids present in ``labels`` (negative: no surface,
    skipped); class 0 is named as what it is, surface without a class."""
    values = np.asarray(labels if isinstance(labels, np.ndarray) else list(labels))
    present = sorted({int(v) for v in np.unique(values) if 0 <= int(v) < taxonomy.num_classes})
    entries = []
    for i in present:
        if i == 0:
            entries.append((taxonomy.classes[0].name + " (no class evidence)", UNKNOWN_CLASS_RGB))
        else:
            entries.append((taxonomy.classes[i].name, tuple(int(c) for c in taxonomy.classes[i].color)))
    return entries


def class_colors(labels: np.ndarray, taxonomy) -> np.ndarray:
    """(..., 3) uint8 display colors of class ids: the taxonomy's, class 0 in UNKNOWN_CLASS_RGB."""
    colors = taxonomy.colorize(labels)
    colors[np.asarray(labels) == 0] = UNKNOWN_CLASS_RGB
    return colors


def _legend_rows(entries: Sequence[LegendEntry], width: int, font, swatch: int, pad: int) -> list[list[tuple]]:
    from PIL import Image, ImageDraw

    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows, row, x = [], [], pad
    for name, color in entries:
        text_w = measure.textlength(name, font=font)
        item = swatch + 4 + int(text_w) + 2 * pad
        if row and x + item > width:
            rows.append(row)
            row, x = [], pad
        row.append((x, name, color))
        x += item
    if row:
        rows.append(row)
    return rows


def annotate(image: np.ndarray, title: str, legend: Sequence[LegendEntry] = (), note: str = "") -> np.ndarray:
    """``image`` (H, W, 3) uint8 with a title bar above (``title``, and ``note`` in smaller type at
    its right) and, when ``legend`` is given, rows of color swatches with names below."""
    from PIL import Image, ImageDraw

    image = np.ascontiguousarray(image, dtype=np.uint8)
    H, W = image.shape[:2]
    size = int(np.clip(W / 40, 11, 20))
    font, small = _font(size), _font(max(9, int(size * 0.8)))
    pad, swatch = max(3, size // 3), size
    title_h = size + 2 * pad
    rows = _legend_rows(legend, W, small, swatch, pad) if legend else []
    legend_h = len(rows) * (swatch + pad) + (pad if rows else 0)
    canvas = Image.new("RGB", (W, H + title_h + legend_h), BAR_RGB)
    canvas.paste(Image.fromarray(image), (0, title_h))
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), title, fill=TEXT_RGB, font=font)
    if note:
        note_w = draw.textlength(note, font=small)
        draw.text((max(W - pad - note_w, pad + draw.textlength(title, font=font) + 2 * pad), pad + 1), note,
                  fill=(180, 180, 180), font=small)
    y = title_h + H + pad
    for row in rows:
        for x, name, color in row:
            draw.rectangle([x, y, x + swatch, y + swatch - 1], fill=tuple(int(c) for c in color), outline=(90, 90, 90))
            draw.text((x + swatch + 4, y), name, fill=TEXT_RGB, font=small)
        y += swatch + pad
    return np.asarray(canvas)


def color_bar_legend(lo: float, hi: float, unit: str, steps: int = 5, colormap=None) -> list[LegendEntry]:
    """Legend entries for a continuous scale: ``steps`` swatches from ``lo`` to ``hi``."""
    values = np.linspace(lo, hi, steps)
    if colormap is None:
        grey = np.linspace(0, 255, steps).astype(int)
        return [(f"{v:.1f} {unit}", (g, g, g)) for v, g in zip(values, grey)]
    colors = colormap(np.linspace(0.0, 1.0, steps))
    return [(f"{v:.1f} {unit}", tuple(int(c) for c in rgb)) for v, rgb in zip(values, colors)]
