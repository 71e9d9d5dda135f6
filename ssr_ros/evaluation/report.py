"""One evaluation of a reconstruction against ground truth: volumes, mesh and speed.

The reconstruction volume is a ``.npz`` on the map's voxel grid (global voxel ``v`` covers
``[v * s, (v + 1) * s)``) with keys:

| key | shape / type | meaning |
| --- | --- | --- |
| ``origin_voxel`` | (3,) int | global index of element [0, 0, 0] |
| ``voxel_size`` | float | metres; must equal the ground truth's |
| ``occupied`` *or* ``tsdf`` | (X, Y, Z) bool / float32 metres | occupancy, or a TSDF (occupied where ``tsdf < voxel_size / 2``, the ground truth's definition; unknown voxels hold +truncation) |
| ``class_ids`` *or* ``semantics`` | (X, Y, Z) int / (X, Y, Z, C) float | labels, or class probabilities (argmax) |
| ``observed`` (optional) | (X, Y, Z) bool | voxels the map measured; else the GT file's ``visible`` |

Geometry is scored on the GT's ``in_room`` voxels; semantics on GT-occupied voxels of a
known class (class 0 ignored). Both are split into observed / unobserved when a mask is
available.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssr_ros.errors import DatasetError, InvalidInput
from ssr_ros.evaluation.completion import completion_report
from ssr_ros.evaluation.grid import align_to_grid
from ssr_ros.evaluation.mesh import DEFAULT_THRESHOLD, mesh_scores_from_meshes
from ssr_ros.evaluation.semantics import semantic_report
from ssr_ros.evaluation.timing import eta_3d


def load_volume(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` volume file; DatasetError naming the file when unreadable."""
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as error:
        raise DatasetError(f"volume file '{path}' cannot be read: {error}") from error


def map_volume(path: str | Path, gt_volume: dict[str, np.ndarray], taxonomy=None) -> dict[str, np.ndarray]:
    """A saved map (``map.ssrmap`` or its folder) as a dense volume on the GT volume's voxel box.

    Raises MapFileError for a map that cannot be read and DatasetError when its voxel size is
    not the GT volume's.
    """
    import torch

    from ssr_ros.map.semantic_tsdf import read_map
    from ssr_ros.map.voxel_export import dense_volume

    tsdf_map = read_map(path, taxonomy=taxonomy)
    gt_voxel = float(np.asarray(gt_volume["voxel_size"]))
    if not np.isclose(tsdf_map.voxel_size, gt_voxel, rtol=1e-4):
        raise DatasetError(f"map '{path}' has {tsdf_map.voxel_size:g} m voxels, the GT volume {gt_voxel:g} m; "
                           f"map the recording at {gt_voxel:g} m to score it against this GT")
    origin = np.asarray(gt_volume["origin_voxel"], dtype=np.int64)
    shape = tuple(int(n) for n in np.asarray(gt_volume["occupied"]).shape)
    return dense_volume(tsdf_map, torch.as_tensor(origin), shape)


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(vertices, faces) of a mesh file (faces None for a point cloud).

    PLY is read with ``plyfile``; other formats (OBJ, OFF, GLB, ...) need ``trimesh``.
    """
    path = Path(path)
    if path.suffix.lower() == ".ply":
        from plyfile import PlyData

        try:
            ply = PlyData.read(str(path))
            vertex = ply["vertex"]
            vertices = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float64)
            faces = None
            if "face" in ply and ply["face"].count:
                name = ply["face"].properties[0].name
                faces = np.stack([np.asarray(f, dtype=np.int64) for f in ply["face"][name]])
                if faces.ndim != 2 or faces.shape[1] != 3:
                    raise ValueError(f"faces must be triangles, got shape {faces.shape}")
        except (OSError, KeyError, ValueError, IndexError) as error:
            raise DatasetError(f"mesh file '{path}' cannot be read: {error}") from error
    else:
        try:
            import trimesh
        except ImportError:
            raise DatasetError(f"mesh file '{path}': only PLY is read without trimesh (pip install trimesh)") from None
        try:
            geometry = trimesh.load(str(path), process=False)
        except Exception as error:  # trimesh raises many types for bad files
            raise DatasetError(f"mesh file '{path}' cannot be read: {error}") from error
        if isinstance(geometry, trimesh.Scene):
            geometry = trimesh.util.concatenate(list(geometry.geometry.values()))
        vertices = np.asarray(geometry.vertices, dtype=np.float64)
        faces = np.asarray(geometry.faces, dtype=np.int64) if hasattr(geometry, "faces") and len(geometry.faces) else None
    if len(vertices) == 0:
        raise DatasetError(f"mesh file '{path}' has no vertices")
    return vertices, faces


def prediction_on_gt_grid(pred: dict[str, np.ndarray], gt: dict[str, np.ndarray], source: str = "prediction") -> dict[str, np.ndarray]:
    """``occupied``, ``class_ids`` and (if known) ``observed`` of a reconstruction, on the GT grid."""
    for key in ("origin_voxel", "voxel_size"):
        if key not in pred:
            raise InvalidInput(f"{source} has no '{key}'; keys: {sorted(pred)}")
    s_pred, s_gt = float(pred["voxel_size"]), float(gt["voxel_size"])
    if abs(s_pred - s_gt) > 1e-9:
        raise InvalidInput(f"{source} voxel size {s_pred} differs from the ground truth's {s_gt}; evaluate at the map's voxel size")
    if "occupied" in pred:
        occupied = np.asarray(pred["occupied"], dtype=bool)
    elif "tsdf" in pred:
        occupied = np.asarray(pred["tsdf"]) < s_pred / 2
    else:
        raise InvalidInput(f"{source} has neither 'occupied' nor 'tsdf'; keys: {sorted(pred)}")
    if "class_ids" in pred:
        labels = np.asarray(pred["class_ids"]).astype(np.int64)
    elif "semantics" in pred:
        probs = np.asarray(pred["semantics"])
        labels = np.where(probs.sum(axis=-1) > 0, probs.argmax(axis=-1), 0)
    else:
        labels = None
    shape, origin, gt_origin = gt["occupied"].shape, pred["origin_voxel"], gt["origin_voxel"]
    out = {"occupied": align_to_grid(occupied, origin, gt_origin, shape, fill=False)}
    if labels is not None:
        out["class_ids"] = align_to_grid(labels, origin, gt_origin, shape, fill=0)
    if "observed" in pred:
        out["observed"] = align_to_grid(np.asarray(pred["observed"], dtype=bool), origin, gt_origin, shape, fill=False)
    return out


def evaluate_reconstruction(
    gt_volume: dict[str, np.ndarray],
    pred_volume: dict[str, np.ndarray] | None,
    num_classes: int,
    class_names: list[str] | None = None,
    gt_mesh: tuple[np.ndarray, np.ndarray | None] | None = None,
    pred_mesh: tuple[np.ndarray, np.ndarray | None] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    fps: float | None = None,
    num_points: int = 200_000,
) -> dict:
    """JSON-ready nested dict of every metric that the inputs allow."""
    report: dict = {}
    miou = fscore = None
    if pred_volume is not None:
        pred = prediction_on_gt_grid(pred_volume, gt_volume)
        valid = np.asarray(gt_volume.get("in_room", np.ones_like(gt_volume["occupied"])), dtype=bool)
        observed = pred.get("observed", gt_volume.get("visible"))
        observed = None if observed is None else np.asarray(observed, dtype=bool)
        report["observed_mask"] = "prediction" if "observed" in pred else ("ground truth visibility" if observed is not None else "none")
        gt_occ = np.asarray(gt_volume["occupied"], dtype=bool)
        report["completion"] = {k: v.as_dict() for k, v in completion_report(pred["occupied"], gt_occ, observed, valid).items()}
        if "class_ids" in pred:
            gt_labels = np.where(gt_occ, np.asarray(gt_volume["class_ids"]), 0)
            sem = semantic_report(pred["class_ids"], gt_labels, num_classes, observed, valid)
            report["semantics"] = {k: v.as_dict(class_names) for k, v in sem.items()}
            miou = sem["all"].miou
    if pred_mesh is not None and gt_mesh is not None:
        scores = mesh_scores_from_meshes(pred_mesh[0], pred_mesh[1], gt_mesh[0], gt_mesh[1], threshold=threshold, num_points=num_points)
        report["mesh"] = scores.as_dict()
        fscore = scores.fscore
    if fps is not None:
        report["timing"] = {"fps": fps}
        if miou is not None and fscore is not None and np.isfinite(miou):
            report["timing"]["eta_3d"] = eta_3d(fps, miou, fscore)
    return report


def format_table(report: dict) -> str:
    """Plain-text tables of a report (percentages for ratios, centimetres for distances)."""
    lines = []

    def pct(v):
        return "   -  " if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{100 * v:6.2f}"

    if "completion" in report:
        lines.append(f"geometry completion (occupied voxels; observed mask: {report.get('observed_mask')})")
        lines.append(f"  {'region':<11} {'IoU':>6} {'prec':>6} {'recall':>6} {'#gt':>9} {'#pred':>9}")
        for region, s in report["completion"].items():
            lines.append(f"  {region:<11} {pct(s['iou'])} {pct(s['precision'])} {pct(s['recall'])} {s['num_gt']:>9} {s['num_pred']:>9}")
    if "semantics" in report:
        lines.append("semantics (voxels of GT surfaces)")
        lines.append(f"  {'region':<11} {'mIoU':>6} {'mAcc':>6} {'#voxels':>9}")
        for region, s in report["semantics"].items():
            lines.append(f"  {region:<11} {pct(s['miou'])} {pct(s['macc'])} {s['num_evaluated']:>9}")
        per_class = report["semantics"]["all"]["per_class_iou"]
        shown = [f"{name} {pct(v).strip()}" for name, v in per_class.items() if v is not None]
        if shown:
            lines.append("  IoU per class (all): " + ", ".join(shown))
    if "mesh" in report:
        m = report["mesh"]

        def cm(v):
            return "-" if v is None else f"{100 * v:.2f} cm"

        lines.append(f"mesh (threshold {100 * m['threshold']:.0f} cm)")
        lines.append(f"  accuracy {cm(m['accuracy'])}, completeness {cm(m['completeness'])}, precision {pct(m['precision']).strip()}, "
                     f"recall {pct(m['recall']).strip()}, F-score {pct(m['fscore']).strip()}")
    if "timing" in report:
        t = report["timing"]
        line = f"timing: {t['fps']:.2f} FPS"
        if "eta_3d" in t:
            line += f", eta_3D = FPS x mIoU x F-score = {t['eta_3d']:.3f}"
        lines.append(line)
    return "\n".join(lines)
