"""Readers of RGB-D dataset folders (and a writer of the ScanNet-style layout).

Every reader is a random-access sequence of ``Frame`` (``len(reader)``, ``reader[i]``,
iteration) with depth in metres, RGB uint8, optional integer labels, intrinsics,
camera-to-world poses (OpenCV optical frame) and nanosecond stamps.

| reader | layout |
| --- | --- |
| ``ScanNetFolder`` | ``color/<i>.jpg|png``, ``depth/<i>.png`` (mm), ``pose/<i>.txt`` (4x4), ``intrinsic/intrinsic_depth.txt``, optional ``label-filt/`` or ``label/`` |
| ``SevenScenesFolder`` | ``frame-XXXXXX.color.png|jpg``, ``.depth.png`` (mm), ``.pose.txt``, optional ``.label.png``; ``camera-intrinsics.txt`` or ``intrinsics.K.txt`` here or in a parent (7-Scenes, 3DMatch/SUN3D, the Princeton shelf data) |
| ``TUMFolder`` | ``rgb.txt``, ``depth.txt``, ``groundtruth.txt`` (TUM RGB-D; depth / 5000) |
| ``ReplicaFolder`` | ``results/frameXXXXXX.jpg``, ``results/depthXXXXXX.png`` (/ 6553.5), ``traj.txt`` (NICE-SLAM layout), ``cam_params.json`` here or in the parent |
| ``RedwoodFolder`` | ``image/`` or ``color/``, ``depth/`` (mm), ``trajectory.log`` here or one folder down (Redwood / Open3D reconstruction system, augmented ICL-NUIM); an Open3D intrinsic ``*.json`` here or up to three parents |

``open_folder(path)`` recognises the layout. ``ScanNetFolderWriter`` / ``write_scannet_folder`` write
the ScanNet layout losslessly (PNG color, uint16 millimetre depth, label PNGs, 4x4 poses,
``timestamps.txt``), which ``ScanNetFolder`` reads back.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from ssr_ros.data.image_files import read_color, read_matrix, read_pose, read_uint16, repair_pose, resize_to, write_png
from ssr_ros.errors import DatasetError, InvalidIntrinsics, InvalidPose, UnreadableFrame
from ssr_ros.geometry.camera import CameraIntrinsics
from ssr_ros.geometry.frame import Frame
from ssr_ros.geometry.pose import matrix_from_quaternion
from ssr_ros.data.rosbag_writer import depth_to_16uc1

DEFAULT_FRAME_RATE = 30.0
"""Frame rate assumed for stamps of datasets that store none (frames/s)."""

SCANNET20_FROM_NYU40 = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 10: 10, 11: 11, 12: 12, 14: 13, 16: 14, 24: 15, 28: 16, 33: 17, 34: 18, 36: 19, 39: 20}
"""NYU40 id -> id of the default scannet20 taxonomy (the ScanNet benchmark's 20 classes)."""


def _numeric_key(path: Path) -> tuple:
    digits = re.findall(r"\d+", path.name)
    return (int(digits[-1]) if digits else -1, path.name)


def _depth_size(paths: list[Path], tries: int = 20) -> tuple[int, int]:
    """(height, width) of the first readable depth image among the first ``tries`` (one bad
    image must not make the whole folder unreadable); UnreadableFrame when none reads."""
    error: UnreadableFrame | None = None
    for path in paths[:tries]:
        try:
            return read_uint16(path).shape
        except UnreadableFrame as failure:
            error = error or failure
    assert error is not None, "no depth image paths given"
    raise error


def _intrinsics(K: np.ndarray, width: int, height: int, source: Path) -> CameraIntrinsics:
    try:
        return CameraIntrinsics.from_matrix(K[:3, :3], width, height)
    except InvalidIntrinsics as error:
        raise DatasetError(f"intrinsics file '{source}': {error}") from error


class FolderSequence:
    """Base of the folder readers: random access to frames, iteration, ``skipped`` counts."""

    root: Path

    def __init__(self) -> None:
        self.skipped: Counter = Counter()

    def __len__(self) -> int:
        raise NotImplementedError

    def frame(self, index: int) -> Frame:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Frame:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range: {self.root} has {len(self)} frames")
        return self.frame(index % len(self))

    def __iter__(self):
        for i in range(len(self)):
            yield self.frame(i)

    def _resolve_intrinsics(self, intrinsics: CameraIntrinsics | None, depths: list[Path]) -> None:
        """Set ``intrinsics`` and ``intrinsics_source``: the given camera, or the one the reader's
        ``_find_intrinsics(width, height)`` finds for the size of the depth images (which must
        read either way)."""
        height, width = _depth_size(depths)
        if intrinsics is None:
            intrinsics, self.intrinsics_source = self._find_intrinsics(width, height)
        else:
            self.intrinsics_source = "given"
        self.intrinsics = intrinsics


class ScanNetFolder(FolderSequence):
    """A ScanNet scene exported by its SensReader (or written by ``write_scannet_folder``).

    Color is resized to the depth size when they differ (ScanNet: 1296x968 vs 640x480), and
    the depth intrinsics are used. Frames whose pose is non-finite (lost tracking) are
    skipped when ``skip_invalid_poses`` (counted in ``skipped``); a missing pose file is an
    error. ``label_map`` maps label-image values to taxonomy ids (see ``scannet_label_map``).
    ``instance_dir`` (default: ``instance-filt/`` or ``instance/`` when present): per-frame 2D
    object instance ids (8- or 16-bit PNG, 0 = none), the frames' ``instance_ids``.
    """

    def __init__(self, root: str | Path, depth_scale: float = 0.001, label_dir: str | None = None, label_map: np.ndarray | None = None,
                 skip_invalid_poses: bool = True, instance_dir: str | None = None):
        super().__init__()
        self.root = Path(root)
        self.depth_scale = depth_scale
        self.label_map = label_map
        depth_dir = self.root / "depth"
        if not depth_dir.is_dir():
            raise DatasetError(f"'{self.root}' is not a ScanNet folder: no depth/ directory")
        depths = sorted(depth_dir.glob("*.png"), key=_numeric_key)
        if not depths:
            raise DatasetError(f"ScanNet folder '{self.root}': depth/ holds no .png images")
        self.names = [p.stem for p in depths]
        intrinsic_dir = self.root / "intrinsic"
        K_file = intrinsic_dir / "intrinsic_depth.txt"
        if not K_file.exists():
            K_file = intrinsic_dir / "intrinsic_color.txt"
        if not K_file.exists():
            raise DatasetError(f"ScanNet folder '{self.root}': intrinsic/intrinsic_depth.txt is missing")
        try:
            K = read_matrix(K_file, (4, 4), "intrinsics file")
        except DatasetError:
            K = read_matrix(K_file, (3, 3), "intrinsics file")
        height, width = _depth_size(depths)
        self.intrinsics = _intrinsics(K, width, height, K_file)
        if label_dir is None:
            label_dir = next((d for d in ("label", "label-filt") if (self.root / d).is_dir()), None)
        self.label_dir = self.root / label_dir if label_dir else None
        if instance_dir is None:
            instance_dir = next((d for d in ("instance", "instance-filt") if (self.root / d).is_dir()), None)
        elif not (self.root / instance_dir).is_dir():
            raise DatasetError(f"ScanNet folder '{self.root}': instance folder '{instance_dir}' does not exist")
        self.instance_dir = self.root / instance_dir if instance_dir else None
        self.stamps = self._stamps()
        if skip_invalid_poses:
            keep = []
            for name in self.names:
                try:
                    read_pose(self.root / "pose" / f"{name}.txt")
                    keep.append(name)
                except InvalidPose:
                    self.skipped["non-finite pose"] += 1
            self.stamps = {n: self.stamps[n] for n in keep}
            self.names = keep

    def _stamps(self) -> dict[str, int]:
        path = self.root / "timestamps.txt"
        if path.exists():
            stamps = {}
            for line_no, line in enumerate(path.read_text().splitlines(), 1):
                parts = line.split()
                if not parts or parts[0].startswith("#"):
                    continue
                if len(parts) != 2:
                    raise DatasetError(f"'{path}' line {line_no}: expected 'frame stamp_ns', got {line!r}")
                stamps[parts[0]] = int(parts[1])
            missing = [n for n in self.names if n not in stamps]
            if missing:
                raise DatasetError(f"'{path}' has no stamp for frames {missing[:5]}")
            return stamps
        return {n: int(round(_numeric_key(Path(n))[0] * 1e9 / DEFAULT_FRAME_RATE)) for n in self.names}

    def __len__(self) -> int:
        return len(self.names)

    def frame(self, index: int) -> Frame:
        name = self.names[index]
        depth = read_uint16(self.root / "depth" / f"{name}.png").astype(np.float32) * np.float32(self.depth_scale)
        K = self.intrinsics
        if depth.shape != K.shape:
            raise UnreadableFrame(f"depth image '{self.root / 'depth' / name}.png' is {depth.shape[1]}x{depth.shape[0]}, expected {K.width}x{K.height}", "depth image of the wrong size")
        color_path = next((p for p in (self.root / "color" / f"{name}.png", self.root / "color" / f"{name}.jpg") if p.exists()), None)
        if color_path is None:
            raise DatasetError(f"ScanNet folder '{self.root}': color/{name}.jpg (or .png) is missing")
        rgb = resize_to(read_color(color_path), K.height, K.width, nearest=False)
        labels = None
        if self.label_dir is not None:
            labels = read_uint16(self.label_dir / f"{name}.png", "label image").astype(np.int64)
            labels = resize_to(labels, K.height, K.width, nearest=True)
            if self.label_map is not None:
                if labels.max(initial=0) >= len(self.label_map):
                    raise DatasetError(f"label image '{self.label_dir / name}.png' has id {labels.max()} beyond the label map ({len(self.label_map)} entries)")
                labels = self.label_map[labels]
        instance_ids = None
        if self.instance_dir is not None and (self.instance_dir / f"{name}.png").exists():
            instance_ids = read_uint16(self.instance_dir / f"{name}.png", "instance image").astype(np.int32)
            instance_ids = resize_to(instance_ids, K.height, K.width, nearest=True)
        T = read_pose(self.root / "pose" / f"{name}.txt")
        return Frame(depth=depth, intrinsics=K, T_world_cam=T, rgb=rgb, labels=labels, stamp_ns=self.stamps[name], frame_id=name,
                     instance_ids=instance_ids)


def scannet_label_map(tsv_path: str | Path, nyu40_to_taxonomy: dict[int, int] = SCANNET20_FROM_NYU40) -> np.ndarray:
    """Lookup array raw ScanNet label id -> taxonomy id from ``scannetv2-labels.combined.tsv``.

    Uses the ``id`` and ``nyu40id`` columns; ids without a class map to 0.
    """
    path = Path(tsv_path)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise DatasetError(f"label table '{path}' cannot be read: {error.strerror}") from error
    header = lines[0].split("\t") if lines else []
    if "id" not in header or "nyu40id" not in header:
        raise DatasetError(f"label table '{path}' needs 'id' and 'nyu40id' columns, has {header}")
    id_col, nyu_col = header.index("id"), header.index("nyu40id")
    pairs = []
    for line_no, line in enumerate(lines[1:], 2):
        cols = line.split("\t")
        if len(cols) <= max(id_col, nyu_col):
            continue
        try:
            pairs.append((int(cols[id_col]), int(cols[nyu_col] or 0)))
        except ValueError:
            raise DatasetError(f"label table '{path}' line {line_no}: id/nyu40id are not integers: {line!r}") from None
    table = np.zeros(max([p[0] for p in pairs], default=0) + 1, dtype=np.int64)
    for raw, nyu in pairs:
        table[raw] = nyu40_to_taxonomy.get(nyu, 0)
    return table


SEVEN_SCENES_INTRINSICS = (585.0, 585.0, 320.0, 240.0)
"""fx, fy, cx, cy documented for 7-Scenes (used when a folder has no intrinsics file)."""


class SevenScenesFolder(FolderSequence):
    """``frame-XXXXXX.{color.png|color.jpg, depth.png, pose.txt[, label.png]}`` folders.

    Intrinsics: ``intrinsics`` if given, else ``camera-intrinsics.txt`` or
    ``intrinsics.K.txt`` (3x3) in the folder or up to two parents, else the 7-Scenes values
    (``intrinsics_source`` says which). Stamps: frame number / ``frame_rate``.
    """

    def __init__(self, root: str | Path, intrinsics: CameraIntrinsics | None = None, depth_scale: float = 0.001, frame_rate: float = DEFAULT_FRAME_RATE):
        super().__init__()
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder '{self.root}' does not exist")
        self.depth_scale = depth_scale
        self.frame_rate = frame_rate
        depths = sorted(self.root.glob("frame-*.depth.png"), key=_numeric_key)
        if not depths:
            raise DatasetError(f"'{self.root}' is not a 7-Scenes/3DMatch folder: no frame-XXXXXX.depth.png files")
        self.names = [p.name[: -len(".depth.png")] for p in depths]
        self._resolve_intrinsics(intrinsics, depths)

    def _find_intrinsics(self, width: int, height: int) -> tuple[CameraIntrinsics, str]:
        for folder in (self.root, self.root.parent, self.root.parent.parent):
            for name in ("camera-intrinsics.txt", "intrinsics.K.txt"):
                path = folder / name
                if path.exists():
                    return _intrinsics(read_matrix(path, (3, 3), "intrinsics file"), width, height, path), str(path)
        fx, fy, cx, cy = SEVEN_SCENES_INTRINSICS
        return CameraIntrinsics(fx, fy, cx, cy, width, height), "7-Scenes default (585, 585, 320, 240)"

    def __len__(self) -> int:
        return len(self.names)

    def frame(self, index: int) -> Frame:
        name = self.names[index]
        base = self.root / name
        depth = read_uint16(Path(f"{base}.depth.png")).astype(np.float32) * np.float32(self.depth_scale)
        K = self.intrinsics
        if depth.shape != K.shape:
            raise UnreadableFrame(f"depth image '{base}.depth.png' is {depth.shape[1]}x{depth.shape[0]}, expected {K.width}x{K.height}", "depth image of the wrong size")
        color_path = next((Path(f"{base}.color.{e}") for e in ("png", "jpg") if Path(f"{base}.color.{e}").exists()), None)
        if color_path is None:
            raise DatasetError(f"color image '{base}.color.png' (or .jpg) is missing")
        rgb = read_color(color_path)
        if rgb.shape[:2] != K.shape:
            raise DatasetError(f"color image '{color_path}' is {rgb.shape[1]}x{rgb.shape[0]} but depth is {K.width}x{K.height}")
        labels = None
        if Path(f"{base}.label.png").exists():
            labels = read_uint16(Path(f"{base}.label.png"), "label image").astype(np.int64)
        try:
            T = read_pose(Path(f"{base}.pose.txt"))
        except InvalidPose as error:
            raise DatasetError(str(error)) from error
        stamp = int(round(_numeric_key(Path(name))[0] * 1e9 / self.frame_rate))
        return Frame(depth=depth, intrinsics=K, T_world_cam=T, rgb=rgb, labels=labels, stamp_ns=stamp, frame_id=name)


TUM_INTRINSICS = {
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}
TUM_DEFAULT_INTRINSICS = (525.0, 525.0, 319.5, 239.5)


def _read_tum_list(path: Path, columns: int) -> list[list[str]]:
    if not path.exists():
        raise DatasetError(f"TUM file '{path}' is missing")
    rows = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < columns:
            raise DatasetError(f"TUM file '{path}' line {line_no}: expected {columns} columns, got {line!r}")
        rows.append(parts)
    return rows


class TUMFolder(FolderSequence):
    """A TUM RGB-D sequence: ``rgb.txt``, ``depth.txt``, ``groundtruth.txt`` and the images.

    Each depth image is paired with the RGB image nearest in time (within ``max_dt``
    seconds) and the ground-truth pose interpolated at its stamp (samples at most
    ``max_pose_gap`` apart); unpaired frames are skipped and counted. Intrinsics default
    to the calibration of the Freiburg camera named in the folder, else the ROS defaults.
    """

    def __init__(self, root: str | Path, intrinsics: CameraIntrinsics | None = None, depth_scale: float = 1.0 / 5000.0, max_dt: float = 0.02, max_pose_gap: float = 0.1):
        super().__init__()
        from ssr_ros.data.rosbag_reader import _PoseTrack

        self.root = Path(root)
        self.depth_scale = depth_scale
        depth_rows = _read_tum_list(self.root / "depth.txt", 2)
        rgb_rows = _read_tum_list(self.root / "rgb.txt", 2)
        gt_path = self.root / "groundtruth.txt"
        if not gt_path.exists():
            raise DatasetError(f"TUM folder '{self.root}' has no groundtruth.txt: poses are needed")
        track = _PoseTrack()
        for row in _read_tum_list(gt_path, 8):
            try:
                values = [float(v) for v in row[:8]]
                T = matrix_from_quaternion(values[1:4], values[4:8], name=f"'{gt_path}' at {row[0]}")
            except ValueError as error:
                raise DatasetError(f"TUM file '{gt_path}': {error}") from error
            track.add(int(round(values[0] * 1e9)), T)
        rgb_stamps = np.array([float(r[0]) for r in rgb_rows])
        self.items = []
        for row in depth_rows:
            t = float(row[0])
            if len(rgb_stamps) == 0:
                break
            j = int(np.argmin(np.abs(rgb_stamps - t)))
            if abs(rgb_stamps[j] - t) > max_dt:
                self.skipped["no rgb within max_dt"] += 1
                continue
            stamp = int(round(t * 1e9))
            T = track.at(stamp, int(max_pose_gap * 1e9))
            if T is None:
                self.skipped["no ground-truth pose at the depth stamp"] += 1
                continue
            self.items.append((stamp, self.root / row[1], self.root / rgb_rows[j][1], T))
        if not self.items:
            raise DatasetError(f"TUM folder '{self.root}': no depth image has a matching rgb image and pose ({dict(self.skipped)})")
        height, width = _depth_size([item[1] for item in self.items])
        if intrinsics is None:
            name = str(self.root.resolve())
            fx, fy, cx, cy = next((v for k, v in TUM_INTRINSICS.items() if k in name), TUM_DEFAULT_INTRINSICS)
            intrinsics = CameraIntrinsics(fx, fy, cx, cy, width, height)
        self.intrinsics = intrinsics

    def __len__(self) -> int:
        return len(self.items)

    def frame(self, index: int) -> Frame:
        stamp, depth_path, rgb_path, T = self.items[index]
        depth = read_uint16(depth_path).astype(np.float32) * np.float32(self.depth_scale)
        rgb = read_color(rgb_path)
        K = self.intrinsics
        if depth.shape != K.shape or rgb.shape[:2] != K.shape:
            raise DatasetError(f"TUM frame '{depth_path}' / '{rgb_path}' sizes {depth.shape} / {rgb.shape[:2]} differ from {K.shape}")
        return Frame(depth=depth, intrinsics=K, T_world_cam=T.copy(), rgb=rgb, stamp_ns=stamp, frame_id=depth_path.stem)


REPLICA_DEFAULTS = {"w": 1200, "h": 680, "fx": 600.0, "fy": 600.0, "cx": 599.5, "cy": 339.5, "scale": 6553.5}
"""The NICE-SLAM Replica camera (used when no cam_params.json is found)."""


class ReplicaFolder(FolderSequence):
    """A Replica sequence in the NICE-SLAM layout (``results/``, ``traj.txt``).

    Line i of ``traj.txt`` (16 numbers, row-major camera-to-world) is the pose of frame i.
    Camera parameters come from ``cam_params.json`` (``{"camera": {w, h, fx, fy, cx, cy,
    scale}}``) in the folder or its parent, else ``REPLICA_DEFAULTS``.
    """

    def __init__(self, root: str | Path, frame_rate: float = DEFAULT_FRAME_RATE):
        super().__init__()
        self.root = Path(root)
        results = self.root / "results"
        if not results.is_dir():
            raise DatasetError(f"'{self.root}' is not a Replica (NICE-SLAM) folder: no results/ directory")
        depths = sorted(results.glob("depth*.png"), key=_numeric_key)
        if not depths:
            raise DatasetError(f"Replica folder '{results}' holds no depthXXXXXX.png images")
        self.indices = [_numeric_key(p)[0] for p in depths]
        self.frame_rate = frame_rate
        params = dict(REPLICA_DEFAULTS)
        self.params_source = "NICE-SLAM defaults"
        for folder in (self.root, self.root.parent):
            path = folder / "cam_params.json"
            if path.exists():
                try:
                    params.update(json.loads(path.read_text())["camera"])
                except (OSError, ValueError, KeyError, TypeError) as error:
                    raise DatasetError(f"camera parameters '{path}' cannot be read: {error!r}; expected {{'camera': {{w, h, fx, fy, cx, cy, scale}}}}") from error
                self.params_source = str(path)
                break
        self.depth_scale = 1.0 / float(params["scale"])
        self.intrinsics = CameraIntrinsics(float(params["fx"]), float(params["fy"]), float(params["cx"]), float(params["cy"]), int(params["w"]), int(params["h"]))
        traj = self.root / "traj.txt"
        try:
            rows = np.loadtxt(traj, dtype=np.float64, ndmin=2)
        except FileNotFoundError:
            raise DatasetError(f"Replica folder '{self.root}' has no traj.txt: poses are needed") from None
        except ValueError as error:
            raise DatasetError(f"poses '{traj}' cannot be parsed: {error}") from error
        if rows.shape[1] != 16:
            raise DatasetError(f"poses '{traj}' have {rows.shape[1]} numbers per line; expected 16 (a row-major 4x4)")
        if max(self.indices) >= len(rows):
            raise DatasetError(f"poses '{traj}' has {len(rows)} lines but frame {max(self.indices)} needs line {max(self.indices) + 1}")
        self.poses = rows.reshape(-1, 4, 4)

    def __len__(self) -> int:
        return len(self.indices)

    def frame(self, index: int) -> Frame:
        i = self.indices[index]
        results = self.root / "results"
        depth = read_uint16(results / f"depth{i:06d}.png").astype(np.float32) * np.float32(self.depth_scale)
        K = self.intrinsics
        if depth.shape != K.shape:
            raise UnreadableFrame(f"depth image '{results / f'depth{i:06d}.png'}' is {depth.shape[1]}x{depth.shape[0]} but the camera is {K.width}x{K.height} ({self.params_source})", "depth image of the wrong size")
        color_path = next((results / f"frame{i:06d}.{e}" for e in ("jpg", "png") if (results / f"frame{i:06d}.{e}").exists()), results / f"frame{i:06d}.jpg")
        rgb = read_color(color_path)
        try:
            T = repair_pose(self.poses[i], f"'{self.root / 'traj.txt'}' line {i + 1}")
        except InvalidPose as error:
            raise DatasetError(str(error)) from error
        return Frame(depth=depth, intrinsics=K, T_world_cam=T, rgb=rgb, stamp_ns=int(round(i * 1e9 / self.frame_rate)), frame_id=f"frame{i:06d}")


PRIMESENSE_INTRINSICS = (525.0, 525.0, 319.5, 239.5)
"""Open3D's default camera (``PinholeCameraIntrinsicParameters.PrimeSenseDefault``), at 640x480."""


def read_trajectory_log(path: Path) -> dict[int, np.ndarray]:
    """Poses of a Redwood / Open3D ``.log`` file: blocks of a header line ``i j n`` (the first
    number is the frame index) and four rows of a camera-to-world 4x4. Returns index -> pose."""
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except OSError as error:
        raise DatasetError(f"trajectory '{path}' cannot be read: {error.strerror or error}") from error
    if len(lines) % 5:
        raise DatasetError(f"trajectory '{path}' has {len(lines)} lines; expected blocks of 5 (a header 'i j n' "
                           "and a 4x4 camera-to-world matrix)")
    poses = {}
    for block in range(len(lines) // 5):
        header, rows = lines[5 * block], lines[5 * block + 1: 5 * block + 5]
        try:
            index = int(header[0])
            T = np.array([[float(v) for v in row] for row in rows], dtype=np.float64)
        except (ValueError, IndexError) as error:
            raise DatasetError(f"trajectory '{path}' block {block + 1} cannot be parsed: {error}") from error
        if T.shape != (4, 4):
            raise DatasetError(f"trajectory '{path}' block {block + 1}: expected 4 rows of 4 numbers")
        poses[index] = T
    return poses


def find_trajectory_log(root: Path) -> Path | None:
    """``trajectory.log`` in ``root``, else in exactly one folder below it."""
    if (root / "trajectory.log").exists():
        return root / "trajectory.log"
    below = sorted(root.glob("*/trajectory.log"))
    return below[0] if len(below) == 1 else None


class RedwoodFolder(FolderSequence):
    """The Redwood / Open3D reconstruction-system layout (augmented ICL-NUIM and Redwood scans).

    ``image/`` (or ``color/``) and ``depth/`` (16-bit PNG, millimetres) with numbered files paired
    by order; ``trajectory.log`` (or ``trajectory``: another .log, e.g. an optimized one) gives
    the camera-to-world pose of frame i in the block headed ``i ...``. Intrinsics: ``intrinsics``
    if given, else an Open3D ``PinholeCameraIntrinsic`` json (``width``, ``height``, column-major
    ``intrinsic_matrix``) in the folder or up to three parents (``camera*.json``,
    ``intrinsic*.json``), else Open3D's PrimeSense default. Frames without a pose are skipped and
    counted in ``skipped``.
    """

    def __init__(self, root: str | Path, intrinsics: CameraIntrinsics | None = None, depth_scale: float = 0.001,
                 frame_rate: float = DEFAULT_FRAME_RATE, trajectory: str | Path | None = None):
        super().__init__()
        self.root = Path(root)
        color_dir = next((self.root / d for d in ("image", "color", "rgb") if (self.root / d).is_dir()), None)
        if color_dir is None or not (self.root / "depth").is_dir():
            raise DatasetError(f"'{self.root}' is not a Redwood / Open3D folder: expected image/ (or color/) and depth/")
        log = Path(trajectory) if trajectory is not None else find_trajectory_log(self.root)
        if log is None or not log.exists():
            raise DatasetError(f"Redwood folder '{self.root}' has no trajectory.log (here or one folder down); "
                               "pass the trajectory file")
        self.trajectory_path = log
        poses = read_trajectory_log(log)
        depths = sorted((self.root / "depth").glob("*.png"), key=_numeric_key)
        colors = sorted([p for p in color_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")], key=_numeric_key)
        if not depths:
            raise DatasetError(f"Redwood folder '{self.root / 'depth'}' holds no PNG depth images")
        if len(colors) != len(depths):
            raise DatasetError(f"Redwood folder '{self.root}': {len(colors)} color images but {len(depths)} depth images")
        self.pairs = [(i, c, d, poses[i]) for i, (c, d) in enumerate(zip(colors, depths)) if i in poses]
        missing = len(depths) - len(self.pairs)
        if missing:
            self.skipped[f"no pose in {log.name}"] += missing
        if not self.pairs:
            raise DatasetError(f"trajectory '{log}' has no pose for any of the {len(depths)} frames")
        self.depth_scale = depth_scale
        self.frame_rate = frame_rate
        self._resolve_intrinsics(intrinsics, depths)

    def _find_intrinsics(self, width: int, height: int) -> tuple[CameraIntrinsics, str]:
        folder = self.root
        for _ in range(4):
            for path in sorted(folder.glob("camera*.json")) + sorted(folder.glob("intrinsic*.json")):
                try:
                    meta = json.loads(path.read_text())
                    K = np.asarray(meta["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T  # column-major
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                if (int(meta.get("width", width)), int(meta.get("height", height))) == (width, height):
                    return _intrinsics(K, width, height, path), str(path)
            folder = folder.parent
        fx, fy, cx, cy = PRIMESENSE_INTRINSICS
        return CameraIntrinsics(fx, fy, cx, cy, width, height), "Open3D PrimeSense default (525, 525, 319.5, 239.5)"

    def __len__(self) -> int:
        return len(self.pairs)

    def frame(self, index: int) -> Frame:
        i, color_path, depth_path, pose = self.pairs[index]
        depth = read_uint16(depth_path).astype(np.float32) * np.float32(self.depth_scale)
        K = self.intrinsics
        if depth.shape != K.shape:
            raise UnreadableFrame(f"depth image '{depth_path}' is {depth.shape[1]}x{depth.shape[0]}, expected "
                                  f"{K.width}x{K.height}", "depth image of the wrong size")
        rgb = read_color(color_path)
        if rgb.shape[:2] != K.shape:
            rgb = resize_to(rgb, K.height, K.width, nearest=False)
        try:
            T = repair_pose(pose, f"'{self.trajectory_path}' frame {i}")
        except InvalidPose as error:
            raise DatasetError(str(error)) from error
        return Frame(depth=depth, intrinsics=K, T_world_cam=T, rgb=rgb, stamp_ns=int(round(i * 1e9 / self.frame_rate)),
                     frame_id=depth_path.stem)


def open_folder(path: str | Path, **options) -> FolderSequence:
    """The reader matching the layout of ``path`` (ScanNet, 7-Scenes/3DMatch, TUM, Replica, Redwood)."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"dataset folder '{path}' does not exist")
    if (path / "depth").is_dir() and (path / "pose").is_dir():
        return ScanNetFolder(path, **options)
    if any(path.glob("frame-*.depth.png")):
        return SevenScenesFolder(path, **options)
    if (path / "depth.txt").exists() and (path / "rgb.txt").exists():
        return TUMFolder(path, **options)
    if (path / "results").is_dir() and (path / "traj.txt").exists():
        return ReplicaFolder(path, **options)
    if (path / "depth").is_dir() and any((path / d).is_dir() for d in ("image", "color", "rgb")) \
            and find_trajectory_log(path) is not None:
        return RedwoodFolder(path, **options)
    if (any(path.glob("*.db3")) or any(path.glob("*.mcap"))) and not (path / "metadata.yaml").exists():
        raise DatasetError(
            f"'{path}' looks like a rosbag2 folder (it holds .db3 / .mcap files) missing its metadata.yaml; "
            "pass the .db3 / .mcap file itself, or restore metadata.yaml (`ros2 bag reindex`)"
        )
    raise DatasetError(
        f"'{path}' matches no known layout: expected ScanNet (depth/, pose/), 7-Scenes (frame-XXXXXX.depth.png), "
        "TUM (rgb.txt, depth.txt), Replica (results/, traj.txt) or Redwood / Open3D (image/, depth/, trajectory.log)"
    )


class ScanNetFolderWriter:
    """Write frames one by one in the ScanNet layout (lossless)::

        with ScanNetFolderWriter("out/scene") as writer:
            for frame in frames:
                writer.write(frame)

    ``color/<i>.png``, ``depth/<i>.png`` (uint16 mm), ``label/<i>.png`` (uint8, or uint16
    above 255), ``instance/<i>.png`` (uint16 2D instance ids, when the frame has them), ``pose/<i>.txt`` (4x4, 17 digits: exact), ``intrinsic/intrinsic_{depth,color}.txt``
    (4x4, one camera) and ``timestamps.txt`` (``<i> <stamp_ns>``, written on close).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.num_frames = 0
        self._stamps: list[str] = []
        self._intrinsics: CameraIntrinsics | None = None

    def __enter__(self) -> "ScanNetFolderWriter":
        for sub in ("color", "depth", "pose", "intrinsic"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        (self.root / "timestamps.txt").write_text("".join(line + "\n" for line in self._stamps))

    def write(self, frame: Frame) -> None:
        frame.validate()
        i = self.num_frames
        root = self.root
        if self._intrinsics is None:
            K4 = np.eye(4)
            K4[:3, :3] = frame.intrinsics.matrix
            for name in ("intrinsic_depth.txt", "intrinsic_color.txt"):
                np.savetxt(root / "intrinsic" / name, K4, fmt="%.17g")
            self._intrinsics = frame.intrinsics
        elif frame.intrinsics != self._intrinsics:
            raise DatasetError(f"frame {i} has intrinsics {frame.intrinsics}, but a ScanNet folder holds one camera ({self._intrinsics})")
        if frame.rgb is not None:
            write_png(root / "color" / f"{i}.png", np.asarray(frame.rgb, dtype=np.uint8))
        write_png(root / "depth" / f"{i}.png", depth_to_16uc1(frame.depth))
        if frame.labels is not None:
            (root / "label").mkdir(exist_ok=True)
            labels = np.asarray(frame.labels)
            write_png(root / "label" / f"{i}.png", labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16))
        if frame.instance_ids is not None:
            ids = np.asarray(frame.instance_ids)
            if ids.max(initial=0) > 65535:
                raise DatasetError(f"frame {i} has instance id {ids.max()}; a ScanNet instance PNG holds ids up to 65535")
            (root / "instance").mkdir(exist_ok=True)
            write_png(root / "instance" / f"{i}.png", ids.astype(np.uint16))
        np.savetxt(root / "pose" / f"{i}.txt", frame.T_world_cam, fmt="%.17g")
        self._stamps.append(f"{i} {int(frame.stamp_ns)}")
        self.num_frames += 1


def write_scannet_folder(frames, root: str | Path) -> int:
    """Write an iterable of frames with ``ScanNetFolderWriter``; returns the number written."""
    with ScanNetFolderWriter(root) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.num_frames
