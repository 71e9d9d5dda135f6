"""Pictures of a synthetic scene: an overview from above and contact sheets of frames."""

from __future__ import annotations

import numpy as np

from ssr_ros.data.synthetic.renderer import render_view
from ssr_ros.data.synthetic.trajectory import look_at
from ssr_ros.geometry.camera import CameraIntrinsics


def overview(scene, width: int = 800, height: int = 600, corner: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, class colors) of the room seen from above one corner, ceiling and near walls removed.

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
    return rgb, labels


def contact_sheet(views, taxonomy, columns: int = 3) -> np.ndarray:
    """Rows of (rgb | labels | depth) for each ``SyntheticView``; labels are the frame's (noisy) labels."""
    rows = []
    for v in views:
        depth = v.frame.depth
        scale = max(float(np.percentile(depth[depth > 0], 99)) if (depth > 0).any() else 1.0, 1e-3)
        gray = (np.clip(depth / scale, 0, 1) * 255).astype(np.uint8)
        rows.append(np.concatenate([v.frame.rgb, taxonomy.colorize(np.asarray(v.frame.labels)), np.repeat(gray[..., None], 3, axis=2)], axis=1))
    return np.concatenate(rows, axis=0) if rows else np.zeros((1, 1, 3), np.uint8)
