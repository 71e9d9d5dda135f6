"""``ssr reconstruct``: a rosbag2 or a dataset folder through the mapping pipeline, offline.

Runs the same :class:`ssr_ros.pipeline.MappingPipeline` as the ROS node (fusion, completion,
meshing, saving) without ROS, via :func:`ssr_ros.reconstruction.reconstruct`, and writes to
``--out``: ``map.ssrmap`` (loadable by the node's load_map service and ``ssr render``),
``mesh.ply``, ``mesh_semantic.ply``, ``voxels.ply``, ``previews/`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ssr_ros.cli.flags import add_deprecated_alias

if TYPE_CHECKING:
    import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reconstruct",
        help="reconstruct a rosbag2 or a ScanNet / 7-Scenes / TUM / Replica / Redwood folder (no ROS needed)",
        description="Fuse the frames of a recording into a semantic TSDF, complete unseen space, and write the map, "
        "meshes (fused color and class colors), PNG previews and summary.json (frames used/dropped, timings, "
        "memory, and metrics with --gt). Uses the same pipeline as the ROS node. Ctrl-C stops and still saves "
        "what was built.",
        epilog="examples:\n  ssr reconstruct run/bag --out out/bag --gt run/gt\n"
        "  ssr reconstruct data/7scenes/seq-01 --out out/kitchen --stride 2 --voxel-size 0.02\n"
        "  ssr reconstruct replica/office0 --out out/office0 --gt replica/office0_mesh.ply --no-completion\n"
        "  ssr reconstruct run/bag --out out/bag_rgb --input-mode rgb --gt run/gt   # color + poses only",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="rosbag2 directory (or its .db3 / .mcap file) or a dataset folder")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--kind", default="auto", choices=["auto", "rosbag2", "scannet", "7scenes", "tum", "replica", "redwood"],
                        help="input format (default: recognised from the files)")
    parser.add_argument("--config", help="parameter yaml, e.g. the node's config/mapping.yaml "
                        "(ssr_mapper: ros__parameters: map.voxel_size ...); the flags below override it")
    group = parser.add_argument_group("map")
    group.add_argument("--voxel-size", type=float, help="voxel edge, metres (default: 0.05 or the config's)")
    group.add_argument("--truncation-voxels", type=float,
                       help="TSDF truncation distance in voxels, as map.truncation_voxels (default: 4)")
    add_deprecated_alias(group, "--truncation", "--truncation-voxels (in voxels, not metres)", "truncation_m", type=float)
    group.add_argument("--max-depth", type=float, help="ignore depth beyond this, metres (default: 5)")
    group.add_argument("--device", help="'auto' (cuda when available), 'cpu', 'cuda', 'cuda:N'")
    group.add_argument("--taxonomy", help="class taxonomy yaml (default: the packaged ScanNet-20)")
    group.add_argument("--weights", help="completion weights .pt, as completion.weights (default: the packaged model, "
                       "if present)")
    add_deprecated_alias(group, "--model", "--weights", "weights")
    group.add_argument("--no-completion", action="store_true", help="fusion only: neither the network nor the room layout")
    group.add_argument("--no-layout", action="store_true",
                       help="no room-layout completion (the unseen floor, walls and ceiling of the room; layout.type none)")
    group.add_argument("--no-objects", action="store_true",
                       help="no object refinement after completion (by default the map's objects are completed from the "
                       "shape prior, their inside written as predicted voxels, and listed in objects.json)")
    group = parser.add_argument_group("gravity (the map and completion work in a z-up frame; outputs go back to the recording's)")
    group.add_argument("--up", type=parse_up,
                       help="where up is in the recording's pose frame: 'auto' (estimate from the cameras and the floor; "
                       "the default, except with a --gt volume, whose frame is z-up), 'z' (the poses are z-up: no "
                       "alignment), 'x', '-y', ... or a vector 'ax,ay,az' (fixed)")
    group.add_argument("--no-wall-alignment", action="store_true",
                       help="do not turn the map about up to put the dominant walls along x and y")
    group = parser.add_argument_group("frames")
    group.add_argument("--start", type=int, default=0, metavar="N",
                       help="begin at frame N of the recording, counting from 0 (default: 0, the first)")
    group.add_argument("--stride", type=int, default=1, help="use every N-th frame (default: 1)")
    group.add_argument("--limit", type=int, help="use at most N frames (after the stride)")
    group.add_argument("--depth-scale", type=float, help="metres per unit of 16-bit depth (default: the format's)")
    group.add_argument("--max-unreadable-run", type=int, metavar="N",
                       help="frames whose files are missing or unreadable are skipped and counted; stop with an error "
                       "(saving what was built) after N of them in a row (default: 20; 0: never)")
    group.add_argument("--max-unreadable", type=int, metavar="N",
                       help="... or after N of them in all (default: never)")
    group = parser.add_argument_group("rosbag2 topics (default: recognised by message type and name)")
    group.add_argument("--depth-topic")
    group.add_argument("--color-topic")
    group.add_argument("--camera-info-topic")
    group.add_argument("--labels-topic", help="2D semantic labels (mono8/mono16 class ids)")
    group.add_argument("--label-confidence-topic",
                       help="per-pixel confidence of the labels (32FC1 0..1, mono8, mono16), beside --labels-topic")
    group.add_argument("--label-probabilities-topic",
                       help="per-class probabilities instead of labels: 32FC<N> / 8UC<N> (N = the taxonomy's "
                       "classes), or N stacked class planes with --probabilities-layout chw")
    group.add_argument("--probabilities-layout", choices=["hwc", "chw"],
                       help="layout of --label-probabilities-topic (default: hwc, as the node's probabilities_layout)")
    group.add_argument("--instances-topic", help="2D object instance ids (mono8/mono16, 0 = none); the objects stage then "
                       "takes its instances from them (default: the config's topics.instances)")
    group.add_argument("--pose-topic", help="PoseStamped / PoseWithCovarianceStamped / Odometry")
    group.add_argument("--pose-source", default="auto", choices=["auto", "topic", "tf"],
                       help="pose topic or /tf (default: a pose topic when the bag has one)")
    group.add_argument("--map-frame", help="fixed frame of the poses, as the node's map_frame (default: map); poses in "
                       "another frame are brought into it by /tf_static")
    add_deprecated_alias(group, "--world-frame", "--map-frame", "map_frame")
    group.add_argument("--pose-child-frame", help="frame a PoseStamped pose topic tracks, as the node's pose_child_frame "
                       "(Odometry names it in child_frame_id; default: the camera's)")
    group.add_argument("--camera-in-pose-frame", type=float, nargs=7, metavar=("X", "Y", "Z", "QX", "QY", "QZ", "QW"),
                       help="pose of the camera's optical frame in the frame the pose topic tracks, as the node's "
                       "camera_in_pose_frame (default: from /tf_static when the frames differ)")
    group = parser.add_argument_group("dataset folders")
    group.add_argument("--labels-folder", help="ScanNet: folder of per-frame label PNGs (default: label-filt/ or label/)")
    group.add_argument("--instances-folder", help="ScanNet: folder of per-frame 2D instance id PNGs, 0 = none (default: "
                       "instance-filt/ or instance/ when present; 'ssr synth' writes instance/); the objects stage then "
                       "takes its instances from them")
    group.add_argument("--semantics-folder",
                       help="any folder recording: 2D semantics per frame, NAME.labels.png (+ NAME.confidence.png|npy) "
                       "or NAME.probs.npy ((H, W, N) or class-major (N, H, W)), NAME = the frame's name "
                       "(e.g. frame-000000); frames without files get structural labels unless others have semantics")
    group = parser.add_argument_group("2D segmentation model (run on every color frame; see 'ssr export-segmenter')")
    group.add_argument("--segmenter", help="a TorchScript (.pt) or ONNX (.onnx) segmentation model file")
    group.add_argument("--segmenter-type", choices=["torchscript", "onnx"],
                       help="the model's format (default: from the file name, .onnx = onnx)")
    group.add_argument("--class-map", help="yaml mapping the model's classes to the taxonomy (config/class_maps/)")
    group = parser.add_argument_group("monocular mode (no depth sensor; see 'ssr train-mono')")
    group.add_argument("--input-mode", choices=["rgbd", "rgb"],
                       help="'rgb': predict depth (with confidence) and semantics from color on key frames and fuse "
                       "those; the recording's depth is not fused, only scored against (default: rgbd, or the "
                       "config's input_mode)")
    group.add_argument("--mono-weights", help="monocular weights .pt, as mono.weights (default: models/mono_small.pt)")
    group = parser.add_argument_group("outputs")
    group.add_argument("--gt", help="ground truth: an 'ssr synth' gt/ directory (volume + mesh) or a mesh file "
                       "in the poses' world frame (mesh scores)")
    group.add_argument("--threshold", type=float, default=0.05, help="mesh F-score threshold, metres (default: 0.05)")
    group.add_argument("--gt-points", type=int, default=200_000, help="surface samples per mesh for the mesh scores (default: 200000)")
    group.add_argument("--no-previews", action="store_true", help="skip the PNG previews")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


AXES = {"x": [1.0, 0.0, 0.0], "y": [0.0, 1.0, 0.0], "z": [0.0, 0.0, 1.0]}


def parse_up(text: str) -> dict:
    """``--up`` value -> gravity options: auto / z / [-]x|y|z / 'ax,ay,az'."""
    text = text.strip().lower()
    if text == "auto":
        return {"mode": "estimate"}
    if text in ("z", "+z"):
        return {"mode": "z_up"}
    sign, axis = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.lstrip("+"))
    if axis in AXES:
        return {"mode": "fixed", "up": [sign * v for v in AXES[axis]]}
    try:
        vector = [float(v) for v in text.split(",")]
    except ValueError:
        vector = []
    if len(vector) != 3 or not any(vector):
        raise argparse.ArgumentTypeError(f"'{text}' is not auto, z, an axis like -y, or a vector 'ax,ay,az' (not all zero)")
    return {"mode": "fixed", "up": vector}


def pipeline_config_from_args(args: argparse.Namespace, default_gravity_mode: str = "estimate"):
    """PipelineConfig from ``--config`` (node parameter yaml) and the flags; also the yaml's topics.*

    Gravity: ``--up`` wins, then the yaml's ``gravity.mode``, then ``default_gravity_mode``
    (offline recordings often use a camera's frame as their world frame, so estimate).
    """
    from ssr_ros.config import config_from_dict, read_parameter_file
    from ssr_ros.pipeline import PipelineConfig

    values = read_parameter_file(args.config) if args.config else {}
    groups = {f.name for f in dataclasses.fields(PipelineConfig)}
    topics = values.get("topics", {}) if isinstance(values.get("topics"), dict) else {}
    for name in ("map_frame", "pose_child_frame", "camera_in_pose_frame"):  # node options that apply offline
        if getattr(args, name, None) is None and values.get(name) not in (None, "", []):
            setattr(args, name, values[name])
    values = {k: v for k, v in values.items() if k in groups}  # the node's ROS-side options do not apply
    map_values = values.setdefault("map", {})
    completion = values.setdefault("completion", {})
    if args.voxel_size is not None:
        map_values["voxel_size"] = args.voxel_size
    if args.truncation_voxels is not None:
        map_values["truncation_voxels"] = args.truncation_voxels
    elif getattr(args, "truncation_m", None) is not None:
        map_values["truncation_voxels"] = args.truncation_m / map_values.get("voxel_size", 0.05)
    if args.max_depth is not None:
        map_values["max_depth"] = args.max_depth
    if args.device:
        values["device"] = args.device
        completion["device"] = args.device
    if args.taxonomy:
        values["taxonomy"] = str(args.taxonomy)
    gravity = values.setdefault("gravity", {})
    if getattr(args, "up", None) is not None:
        gravity.update(args.up)
    else:
        gravity.setdefault("mode", default_gravity_mode)
    if getattr(args, "no_wall_alignment", False):
        gravity["align_walls"] = False
    if getattr(args, "input_mode", None):
        values["input_mode"] = args.input_mode
    if getattr(args, "mono_weights", None):
        values.setdefault("mono", {})["weights"] = str(Path(args.mono_weights))
    if args.no_completion or getattr(args, "no_layout", False):
        values.setdefault("layout", {})["type"] = "none"
    if args.no_completion:
        completion["type"] = "none"
    elif args.weights:
        completion["type"] = "ssr_unet"
        completion["weights"] = str(Path(args.weights))
    return config_from_dict(PipelineConfig, values), topics


def format_completion(summary: dict) -> str:
    """One line on what each completion stage added (empty when completion did not run): the
    network's chunks (or that it was withheld), the room layout's voxels, planes and doors or why it
    wrote nothing, the objects."""
    completion = summary.get("completion") or {}
    if not completion.get("enabled"):
        return ""
    if completion.get("withheld"):  # its calibration found no threshold precise enough
        parts = ["completion: network withheld (completion.min_confidence runs it)"]
    else:
        parts = [f"completion: network {completion.get('chunks_completed', 0)} chunk(s)"]
    layout = completion.get("layout")
    if layout:
        bounding = [p["kind"] for p in layout.get("planes", []) if p.get("bounding")]
        patches = [patch.get("class", "door") for patch in layout.get("patches", [])]
        kinds = ("floor", "ceiling", "wall") + tuple(dict.fromkeys(patches))  # patches by the classes they carry
        bounding += patches
        found = ", ".join(f"{bounding.count(k)} {k}{'s' if bounding.count(k) > 1 else ''}"
                          for k in kinds if k in bounding) or "no plane"
        if layout.get("voxels_written"):
            parts.append(f"room layout {layout['voxels_written']} voxels ({found})")
        else:
            parts.append(f"room layout nothing ({layout.get('reason') or 'nothing to write'}; found {found})")
    objects = summary.get("objects")
    if objects:
        parts.append(f"objects {objects['refined']} of {objects['instances']} refined, {objects['voxels_written']} voxels")
    return "; ".join(parts)


def camera_extrinsic(values) -> "np.ndarray | None":
    """(4, 4) from x y z qx qy qz qw, or None when not given or identity (then /tf_static decides)."""
    if values is None:
        return None
    from ssr_ros.ros.node_config import NodeConfig

    return NodeConfig(camera_in_pose_frame=[float(v) for v in values]).explicit_camera_extrinsic()


STAGES = {"setup_s": "start-up", "integrate_s": "read + fuse", "complete_s": "completion", "save_s": "save",
          "previews_s": "previews", "evaluate_s": "metrics", "other_s": "other"}


def format_times(summary: dict) -> str:
    """One line: the whole run's time and rate, and each stage's time (they add up to the whole),
    with the frames/s of reading + fusing and of fusion alone."""
    speed, frames = summary["speed"], summary["frames"]
    wall = speed["wall_s"]
    parts = []
    for key, name in STAGES.items():
        if key not in wall:
            continue
        part = f"{name} {wall[key]:.1f} s"
        if key == "integrate_s" and speed.get("read_fuse_fps"):
            part += f" ({speed['read_fuse_fps']:.1f} frames/s"
            part += f"; fusion alone {speed['integrate_fps']:.1f})" if speed.get("integrate_fps") else ")"
        if key == "save_s":
            planning = speed["pipeline_timings"].get("planning", {}).get("total_s", 0.0)
            if planning:
                part += f" (planner outputs {planning:.1f} s)"
        parts.append(part)
    rate = f" ({speed['end_to_end_fps']:.2f} frames/s end to end)" if speed.get("end_to_end_fps") else ""
    return f"{frames['read']} frames in {speed['whole_s']:.1f} s{rate}: " + ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from ssr_ros.errors import ConfigError

    if args.stride < 1:
        raise ConfigError(f"--stride {args.stride} must be at least 1")
    if args.start < 0:
        raise ConfigError(f"--start {args.start} must be at least 0")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit} must be at least 1")
    for flag, value in (("--max-unreadable-run", args.max_unreadable_run), ("--max-unreadable", args.max_unreadable)):
        if value is not None and value < 0:
            raise ConfigError(f"{flag} {value} must be at least 0 (0: never stop)")
    created = not Path(args.out).exists()
    try:
        return _run(args)
    except BaseException:
        _remove_if_empty(Path(args.out), created)
        raise


def _remove_if_empty(out: Path, created: bool) -> None:
    """Leave no empty output directory behind a run that failed before writing anything."""
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _run(args: argparse.Namespace) -> int:
    from ssr_ros.evaluation.report import format_table
    from ssr_ros.pipeline import MappingPipeline
    from ssr_ros.reconstruction import ReconstructionOptions, check_writable, load_ground_truth, open_recording, reconstruct
    from ssr_ros.taxonomy import ClassTaxonomy

    started_at = getattr(args, "started_at", None)  # the command's start (ssr_ros.cli.main)
    gt_is_volume = bool(args.gt) and (Path(args.gt) / "gt_volume.npz").exists()
    config, topics = pipeline_config_from_args(args, "z_up" if gt_is_volume else "estimate")
    out = check_writable(args.out)  # before anything slow
    recording = open_recording(
        args.input, args.kind,
        depth_topic=args.depth_topic or topics.get("depth"), color_topic=args.color_topic or topics.get("color"),
        camera_info_topic=args.camera_info_topic or topics.get("camera_info"),
        labels_topic=args.labels_topic or topics.get("labels"), pose_topic=args.pose_topic or topics.get("pose"),
        pose_source=args.pose_source, world_frame=args.map_frame, depth_scale=args.depth_scale,
        label_dir=args.labels_folder, camera_in_pose_frame=camera_extrinsic(args.camera_in_pose_frame),
        pose_child_frame=args.pose_child_frame or "",
        label_confidence_topic=args.label_confidence_topic or topics.get("label_confidence") or None,
        label_probabilities_topic=args.label_probabilities_topic or topics.get("label_probabilities") or None,
        probabilities_layout=args.probabilities_layout or topics.get("probabilities_layout") or "hwc",
        num_classes=ClassTaxonomy.load(config.taxonomy or None).num_classes,
        instance_dir=args.instances_folder,
        instances_topic=args.instances_topic or topics.get("instances") or None,
    )
    gt = load_ground_truth(args.gt) if args.gt else None
    pipeline = MappingPipeline(config)
    segmenter = None
    if args.segmenter:
        kind = args.segmenter_type or ("onnx" if args.segmenter.endswith(".onnx") else "torchscript")
        config.segmenter.type, config.segmenter.model = kind, args.segmenter
        config.segmenter.class_map = args.class_map or config.segmenter.class_map
    if config.segmenter.type != "none":
        from ssr_ros.semantics.segmenter import Segmenter

        segmenter = Segmenter(config.segmenter, pipeline.taxonomy)
        pipeline.semantic_source_expected = True
    semantics = None
    if args.semantics_folder:
        from ssr_ros.semantics.folder import SemanticsFolder

        semantics = SemanticsFolder(args.semantics_folder, pipeline.taxonomy.num_classes)
        pipeline.semantic_source_expected = True
    what = f"{recording.total} frames" if recording.total is not None else "frames"
    print(f"[reconstruct] {recording.kind} '{recording.path}': {what}; map on {pipeline.device}, "
          f"{config.map.voxel_size} m voxels, completion {'on' if pipeline.completion_enabled else 'off'}", flush=True)
    if pipeline.completion_withheld:
        print(f"[reconstruct] completion withheld: {pipeline.completion_withheld}", flush=True)
    options = ReconstructionOptions(start=args.start, stride=args.stride, limit=args.limit, complete=not args.no_completion,
                                    objects=not getattr(args, "no_objects", False),
                                    previews=not args.no_previews, ground_truth=gt, threshold=args.threshold, gt_points=args.gt_points,
                                    progress=not args.no_progress, started_at=started_at, semantics=semantics,
                                    segmenter=segmenter)
    if args.max_unreadable_run is not None:
        options.max_unreadable_run = args.max_unreadable_run or None
    if args.max_unreadable is not None:
        options.max_unreadable = args.max_unreadable or None
    summary = reconstruct(pipeline, recording, out, options)
    frames = summary["frames"]
    print(f"[reconstruct] integrated {frames['integrated']} of {frames['read']} frames"
          + (f" (dropped: {frames['dropped_by_reason']})" if frames["dropped"] else "")
          + f"; {summary['map']['num_blocks']} blocks, {summary['map']['memory_bytes'] / 2**20:.1f} MiB")
    print(f"[reconstruct] {format_times(summary)}")
    completion_line = format_completion(summary)
    if completion_line:
        print(f"[reconstruct] {completion_line}")
    gravity = summary.get("gravity", {})
    if gravity.get("source") not in (None, "z_up"):
        print(f"[reconstruct] up in the recording's frame: {[round(v, 4) for v in gravity['up']]} ({gravity['source']}; "
              f"{gravity['up_angle_to_world_z_deg']:.1f} deg from its z), wall yaw {gravity['wall_yaw_deg']:.1f} deg; "
              "map.ssrmap is in the aligned frame, meshes and voxels.ply in the recording's")
    planning = summary.get("planning")
    if planning:
        floor, grid = planning["floor"], planning["occupancy"]
        print(f"[reconstruct] floor at z = {floor['height_m']:.2f} m in the map's frame ({floor['source']}); "
              f"obstacles {planning['band_m'][0]:.2f}..{planning['band_m'][1]:.2f} m: {grid['occupied']} occupied, "
              f"{grid['free']} free cells in occupancy.yaml (Nav2), predicted ones in occupancy_predicted.yaml")
    mono = summary.get("mono")
    if mono:
        line = (f"[reconstruct] monocular: {mono['key_frames']} key frames of {mono['frames_seen']}, "
                f"{mono['predict_ms_mean']:.1f} ms per prediction, {100 * mono['fused_pixel_fraction']:.0f}% of pixels fused")
        scores = mono.get("depth_vs_recorded")
        if scores:
            line += (f"; predicted vs recorded depth: AbsRel {scores['abs_rel']:.3f}, RMSE {scores['rmse']:.3f} m, "
                     f"delta<1.25 {scores['delta1']:.3f}")
        print(line)
    metrics = summary.get("metrics")
    if metrics:
        if "completion" in metrics:
            print(format_table(metrics))
        for key, label in (("mesh", "whole GT surface"), ("mesh_seen", "GT surface the frames saw")):
            scores = metrics.get(key) if "completion" not in metrics else None
            if scores:
                print(f"[reconstruct] mesh vs {label}: F-score {scores['fscore']:.3f} @ {scores['threshold'] * 100:.0f} cm "
                      f"(precision {scores['precision']:.3f}, recall {scores['recall']:.3f}, "
                      f"accuracy {scores['accuracy'] * 100:.1f} cm, completeness {scores['completeness'] * 100:.1f} cm)")
    print(f"[reconstruct] wrote {out / 'summary.json'}, {out / 'mesh.ply'}"
          + ("" if args.no_previews else f", previews in {out / 'previews'}"))
    if summary["interrupted"]:
        return 130
    return 0
