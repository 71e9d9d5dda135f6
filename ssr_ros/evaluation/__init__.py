"""Metrics on plain NumPy arrays (no dependency on the map implementation).

- ``completion``: IoU / precision / recall of occupied voxels (all, observed, unobserved);
- ``semantics``: confusion matrix, per-class IoU, mIoU, mAcc (all, observed, unobserved);
- ``mesh``: accuracy, completeness, precision, recall, F-score at 5 cm (area sampling);
- ``timing``: frames per second, CDRNet's eta_3D = FPS x mIoU x F-score;
- ``grid``: aligning dense volumes on the map's global voxel grid;
- ``report``: everything at once for a reconstruction against a ground truth (``ssr evaluate``).
"""

from ssr_ros.evaluation.completion import CompletionScores, completion_report, completion_scores
from ssr_ros.evaluation.grid import align_to_grid
from ssr_ros.evaluation.mesh import DEFAULT_THRESHOLD, MeshScores, mesh_scores, mesh_scores_from_meshes, sample_surface
from ssr_ros.evaluation.semantics import SemanticScores, confusion_matrix, scores_from_confusion, semantic_report, semantic_scores
from ssr_ros.evaluation.timing import FrameTimer, eta_3d, frames_per_second

__all__ = [
    "DEFAULT_THRESHOLD", "CompletionScores", "FrameTimer", "MeshScores", "SemanticScores", "align_to_grid",
    "completion_report", "completion_scores", "confusion_matrix", "eta_3d", "frames_per_second", "mesh_scores",
    "mesh_scores_from_meshes", "sample_surface", "scores_from_confusion", "semantic_report", "semantic_scores",
]
