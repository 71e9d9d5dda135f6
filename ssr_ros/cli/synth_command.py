"""``ssr synth``: generate a furnished room (or a multi-room floor) and a camera sequence through it.

Writes into ``--out``:

- ``bag/``: rosbag2 (sqlite3 or mcap) with the RealSense-style topics of
  ``ssr_ros.data.rosbag_writer.DEFAULT_TOPICS`` (``--format bag`` or ``both``) and the exact
  per-pixel object instances on ``/camera/semantic/instances`` (mono16; every scene box's
  object, walls and floor included);
- ``folder/``: the same frames in the ScanNet layout (``--format folder`` or ``both``), with
  the exact per-pixel object instances in ``instance/`` (every scene box's object, walls and
  floor included);
- ``gt/``: ``scene.json`` (seed, room, objects, options), ``gt_volume.npz`` (``GTVolume``
  at ``--voxel-size`` plus ``visible``, the voxels the camera path saw), ``gt_mesh.ply``
  (vertex colors, ``label`` and ``instance`` per vertex);
- ``preview.png``: the room from above and a few frames (rgb | labels | depth).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from ssr_ros.data.rosbag_writer import INSTANCES_TOPIC
from ssr_ros.errors import DatasetError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic room and an RGB-D sequence with exact ground truth",
        description="Generate a furnished room (deterministic by seed), render a camera sequence through it "
        "with depth-sensor and 2D-segmentation noise, and write a rosbag2 file and/or a ScanNet-style "
        "folder plus the ground-truth volume and mesh.",
    )
    parser.add_argument("--seed", type=int, default=0, help="scene and sequence seed (default: 0)")
    parser.add_argument("--out", required=True, help="output directory (created; must not hold a bag already)")
    parser.add_argument("--frames", type=int, default=120, help="number of frames (default: 120)")
    parser.add_argument("--width", type=int, default=640, help="image width (default: 640)")
    parser.add_argument("--height", type=int, default=480, help="image height (default: 480)")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate of the stamps (default: 15)")
    parser.add_argument("--layout", choices=["room", "floor"], default="room",
                        help="'room': one furnished room; 'floor': a 24 x 20 m multi-room floor with a corridor and "
                        "doors, for long runs (default: room)")
    parser.add_argument("--trajectory", choices=["handheld", "robot", "tour"], default=None,
                        help="camera path style (default: handheld for a room, tour (every room) for a floor)")
    parser.add_argument("--room-type", default="", help="bedroom, living_room, office, kitchen or bathroom (default: by seed)")
    parser.add_argument("--format", choices=["bag", "folder", "both"], default="bag", help="what to write (default: bag)")
    parser.add_argument("--storage", choices=["sqlite3", "mcap"], default="sqlite3", help="rosbag2 storage (default: sqlite3)")
    parser.add_argument("--compress", action="store_true", help="zstd-compress each bag message (rosbag2 'message' mode)")
    parser.add_argument("--no-depth-noise", action="store_true", help="exact depth (still millimetre-quantised)")
    parser.add_argument("--no-label-noise", action="store_true", help="ground-truth labels instead of the 2D predictor model")
    parser.add_argument("--voxel-size", type=float, default=0.05, help="GT volume voxel size, metres (default: 0.05)")
    parser.add_argument("--no-gt", action="store_true", help="skip the GT volume and mesh")
    parser.add_argument("--taxonomy", default=None, help="class taxonomy yaml (default: config/classes/scannet20.yaml)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for rendering (default: 1; the renderer runs many small tensor operations, "
                        "which more threads speed up little and slow down a lot on a busy machine)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from ssr_ros.data.folders import ScanNetFolderWriter
    from ssr_ros.data.rosbag_writer import RosbagWriter
    from ssr_ros.data.synthetic import (
        DepthNoiseConfig,
        LabelNoiseConfig,
        SceneConfig,
        SequenceConfig,
        SyntheticSequence,
        TrajectoryConfig,
        generate_scene,
        visible_voxels,
    )
    from ssr_ros.data.synthetic.preview import preview_image
    from ssr_ros.config import config_to_dict
    from ssr_ros.taxonomy import ClassTaxonomy

    import torch

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    bag_path, folder_path, gt_path = out / "bag", out / "folder", out / "gt"
    if args.format in ("bag", "both") and bag_path.exists():
        raise DatasetError(f"'{bag_path}' already exists; choose a new --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    taxonomy = ClassTaxonomy.load(args.taxonomy)
    if args.layout == "floor":
        from ssr_ros.data.synthetic.floor import generate_floor

        scene = generate_floor(args.seed, taxonomy=taxonomy)
    else:
        scene = generate_scene(args.seed, SceneConfig(room_type=args.room_type), taxonomy)
    trajectory = args.trajectory or ("tour" if args.layout == "floor" else "handheld")
    config = SequenceConfig(
        width=args.width, height=args.height,
        trajectory=TrajectoryConfig(kind=trajectory, num_frames=args.frames, frame_rate=args.fps),
        depth_noise=DepthNoiseConfig(enabled=not args.no_depth_noise),
        label_noise=LabelNoiseConfig(enabled=not args.no_label_noise),
    )
    sequence = SyntheticSequence(scene, config)
    print(f"ssr synth: seed {args.seed}, {scene.room_type} {scene.room_size[0]:.2f} x {scene.room_size[1]:.2f} x "
          f"{scene.room_size[2]:.2f} m, {len(scene.objects)} objects, {len(sequence)} frames of {args.width}x{args.height}")
    volume = None if args.no_gt else scene.gt_volume(args.voxel_size)
    visible = None if volume is None else np.zeros(volume.shape, dtype=bool)

    bag = RosbagWriter(bag_path, storage=args.storage, compress=args.compress) if args.format in ("bag", "both") else None
    folder = ScanNetFolderWriter(folder_path) if args.format in ("folder", "both") else None
    samples = []
    sample_at = {0, len(sequence) // 2, len(sequence) - 1}
    start = time.perf_counter()
    render_seconds = 0.0
    try:
        if bag:
            bag.__enter__()
            bag.add_topic("instances", INSTANCES_TOPIC)
        if folder:
            folder.__enter__()
        for i in range(len(sequence)):
            t0 = time.perf_counter()
            view = sequence.view(i)
            render_seconds += time.perf_counter() - t0
            if bag:
                bag.write(view.frame)
                bag.write_message("instances", bag.image_message(
                    view.frame.stamp_ns, view.rendering.instance_ids.astype(np.uint16), "mono16"), view.frame.stamp_ns)
            if folder:
                # the folder also gets the exact 2D instances (instance/)
                folder.write(dataclasses.replace(view.frame, instance_ids=view.rendering.instance_ids))
            if visible is not None:
                visible |= visible_voxels(volume, [view.rendering.depth], [view.frame.T_world_cam], sequence.intrinsics)
            if i in sample_at:
                samples.append(view)
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{len(sequence)} frames")
    finally:
        if bag:
            bag.__exit__(None, None, None)
        if folder:
            folder.__exit__(None, None, None)
    elapsed = time.perf_counter() - start

    if volume is not None:
        gt_path.mkdir(parents=True, exist_ok=True)
        volume.save(gt_path / "gt_volume.npz", visible=visible)
        scene.gt_mesh().save_ply(gt_path / "gt_mesh.ply")
    gt_path.mkdir(parents=True, exist_ok=True)
    summary = scene.summary()
    summary["sequence"] = config_to_dict(config)
    summary["voxel_size"] = None if volume is None else args.voxel_size
    (gt_path / "scene.json").write_text(json.dumps(summary, indent=2))

    Image.fromarray(preview_image(scene, samples, taxonomy, args.width, args.height, corner=args.seed)).save(
        out / "preview.png")

    per_minute = 60.0 * len(sequence) / max(render_seconds, 1e-9)
    print(f"  rendered {len(sequence)} frames in {render_seconds:.1f} s ({per_minute:.0f} frames/min), total {elapsed:.1f} s")
    if bag:
        size = sum(p.stat().st_size for p in bag_path.iterdir())
        print(f"  bag: {bag_path} ({args.storage}, {size / 2**20:.1f} MiB)")
    if folder:
        print(f"  folder: {folder_path}")
    if volume is not None:
        seen = visible & volume.occupied & volume.in_room
        frac = seen.sum() / max(1, (volume.occupied & volume.in_room).sum())
        print(f"  ground truth: {gt_path} (voxel {args.voxel_size} m, {volume.shape}; camera saw {100 * frac:.0f}% of occupied voxels)")
    print(f"  preview: {out / 'preview.png'}")
    return 0
