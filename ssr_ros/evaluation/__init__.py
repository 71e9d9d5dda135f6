"""Metrics: completion IoU, semantic mIoU/mAcc, mesh accuracy/completeness/F-score, timing."""
