"""Nucleus segmentation metrics (pure functions + torchmetrics state) and post-processing.

Definitions and conventions: see :mod:`histo_gan.metrics.instance` and
:mod:`histo_gan.metrics.distance`.
"""

from histo_gan.metrics.collection import PER_IMAGE_METRICS, NucleusMetrics, make_metric_collection
from histo_gan.metrics.distance import hausdorff_distance, object_hausdorff
from histo_gan.metrics.instance import (
    AGGREGATABLE,
    ImageStats,
    aji,
    aji_plus,
    compute_all,
    dice,
    dice2,
    dice_avg,
    evaluate_pair,
    object_dice,
    panoptic_quality,
    scores_from_stats,
)
from histo_gan.metrics.overlap import OverlapTable, overlap_table

__all__ = [
    "AGGREGATABLE",
    "PER_IMAGE_METRICS",
    "ImageStats",
    "NucleusMetrics",
    "OverlapTable",
    "aji",
    "aji_plus",
    "compute_all",
    "dice",
    "dice2",
    "dice_avg",
    "evaluate_pair",
    "hausdorff_distance",
    "make_metric_collection",
    "object_dice",
    "object_hausdorff",
    "overlap_table",
    "panoptic_quality",
    "scores_from_stats",
]
