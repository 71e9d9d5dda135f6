"""Pictures of a synthetic scene: an overview from above and the ``ssr synth`` preview sheet."""

from __future__ import annotations

import numpy as np

from ssr_ros.data.synthetic.renderer import render_view
from ssr_ros.data.synthetic.trajectory import look_at
from ssr_ros.geometry.camera import CameraIntrinsics


def overview(scene, width: int = 800, height: int = 600, corner: int = 0,
             with_ids: bool = False) -> tuple[np.ndarray, ...]:
    """(rgb, class colors) of the room seen from above one corner, ceiling and near walls removed;
    with ``with_ids`` also the (H, W) class ids (-1 where nothing is hit).

    corner: 0..3, which corner of the room the camera looks from.
    """
    W, D, H = scene.room_size
    cx, cy = [(0, 0), (1, 0), (1, 1), (0, 1)][corner % 4]
    eye = np.array([(-0.35 + 1.7 * cx) * W, (-0.35 + 1.7 * cy) * D, H + 0.9 * max(W, D)])
    target = np.array([W / 2, D / 2, 0.3])
    hidden = [scene.shell["ceiling"], scene.shell["x_min" if cx == 0 else "x_max"], scene.shell["y_min" if cy == 0 else "y_max"]]
    # things hung on the removed walls would float: hide them too
    lo, hi = scene.boxes.aabbs()
    wall_x, wall_y = (0.0 if cx == 0 else W), (0.0 if cy == 0 else D)
    for obj in scene.objects:
        if obj.name in ("door", "window", "curtain", "picture"):
            olo, ohi = lo[obj.box_indices].min(0), hi[obj.box_indices].max(0)
            if olo[0] - 0.2 <= wall_x <= ohi[0] + 0.2 and (ohi[0] - olo[0]) < 0.5 or olo[1] - 0.2 <= wall_y <= ohi[1] + 0.2 and (ohi[1] - olo[1]) < 0.5:
                hidden.extend(obj.box_indices)
    f = 0.9 * width
    K = CameraIntrinsics(f, f, width / 2 - 0.5, height / 2 - 0.5, width, height)
    view = render_view(scene, look_at(eye, target), K, exclude_boxes=tuple(hidden))
    background = view.depth == 0
    rgb = view.rgb.copy()
    rgb[background] = 255
    labels = scene.taxonomy.colorize(view.class_ids)
    labels[background] = 255
    if with_ids:
        return rgb, labels, np.where(background, -1, view.class_ids)
    return rgb, labels


def preview_image(scene, views, taxonomy, width: int, height: int, corner: int = 0) -> np.ndarray:
    """The ``ssr synth`` preview: the room from above (color | ground-truth classes) and, per
    sampled frame, color | its 2D labels (noisy, as the mapper gets them) | depth, each panel
    titled, with a legend of the classes shown and of the depth scale."""
    from ssr_ros.figure import annotate, class_legend, color_bar_legend

    rgb, labels, top_ids = overview(scene, width, height, corner=corner, with_ids=True)
    panels = [annotate(rgb, "room from above (corner walls and ceiling hidden)"),
              annotate(labels, "ground-truth classes", class_legend(top_ids, taxonomy))]
    depths = [v.frame.depth for v in views]
    valid = np.concatenate([d[d > 0] for d in depths]) if depths else np.zeros(0)
    scale = max(float(np.percentile(valid, 99)), 1e-3) if valid.size else 1.0
    rows = [_row(panels)]
    frame_labels = []
    for v in views:
        gray = (np.clip(v.frame.depth / scale, 0, 1) * 255).astype(np.uint8)
        ids = np.asarray(v.frame.labels)
        frame_labels.append(ids.reshape(-1))
        rows.append(_row([
            annotate(v.frame.rgb, f"frame {v.index}: color"),
            annotate(taxonomy.colorize(ids), "2D labels (noisy pseudo-labels)"),
            annotate(np.repeat(gray[..., None], 3, axis=2), f"depth (black 0, white {scale:.1f} m)"),
        ]))
    width_max = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 4), (0, width_max - r.shape[1]), (0, 0)), constant_values=18)
                            for r in rows], axis=0)
    present = np.concatenate([top_ids.reshape(-1)] + frame_labels)
    legend = class_legend(present[present > 0], taxonomy) + color_bar_legend(0.0, scale, "m depth", steps=4)
    size = f"{scene.room_size[0]:.1f} x {scene.room_size[1]:.1f} x {scene.room_size[2]:.1f} m"
    return annotate(sheet, f"ssr synth: {scene.room_type}, {size}, {len(scene.objects)} objects", legend)


def _row(panels: list[np.ndarray]) -> np.ndarray:
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 4), (0, 0)), constant_values=18) for p in panels]
    return np.concatenate(padded, axis=1)
