"""Overlap-based nucleus segmentation metrics, all derived from one :class:`OverlapTable`.

Inputs are instance label maps (numpy arrays or torch tensors, any device; computed on the
CPU): integer ``(H, W)``, 0 = background, any positive ids. Definitions follow
``docs``/METRICS (Kumar 2017 AJI, HoVer-Net AJI+ and ensemble Dice, Kirillov 2019 PQ, GlaS
object Dice). Conventions:

- both maps empty: every overlap score is 1.0; one empty, the other not: 0.0;
- a pair matches for PQ/F1 only with IoU strictly greater than 0.5;
- SQ is 0.0 when there is no match (unless both maps are empty);
- ties: AJI picks, among the predictions of equal best IoU, the one with the smallest id;
  object Dice picks, among equal best overlaps, the smallest id; AJI+ uses scipy's
  ``linear_sum_assignment`` on the IoU matrix ordered by id. Hence AJI, AJI+ and object Dice
  are invariant to relabelling that keeps the order of ids, the others to any relabelling.

Every per-image score is a ratio of sums kept in :class:`ImageStats`, so a dataset can be
scored ``per_image`` (mean of ratios) or ``aggregate`` (ratio of summed statistics).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy.optimize import linear_sum_assignment

from histo_gan.metrics.distance import hausdorff_distance, object_hausdorff
from histo_gan.metrics.overlap import OverlapTable, best_pair_per_owner, overlap_table

__all__ = [
    "AGGREGATABLE",
    "ImageStats",
    "aji",
    "aji_plus",
    "compute_all",
    "evaluate_pair",
    "dice",
    "dice2",
    "dice_avg",
    "image_stats",
    "object_dice",
    "panoptic_quality",
    "scores_from_stats",
]

# Scores that are ratios of sums and therefore have an ``aggregate`` (dataset) version.
AGGREGATABLE = (
    "dice",
    "dice2",
    "dice_avg",
    "aji",
    "aji_plus",
    "dq",
    "sq",
    "pq",
    "f1",
    "precision",
    "recall",
)


@dataclass
class ImageStats:
    """Sufficient statistics of one (gt, pred) pair; sums of these score a whole dataset."""

    n_gt: int = 0
    n_pred: int = 0
    fg_intersection: int = 0  # |G ∩ P| of the foregrounds
    fg_total: int = 0  # |G| + |P|
    pair_intersection: int = 0  # Σ |G_i ∩ P_j| over overlapping pairs
    pair_total: int = 0  # Σ (|G_i| + |P_j|) over overlapping pairs
    aji_intersection: int = 0
    aji_union: int = 0
    aji_plus_intersection: int = 0
    aji_plus_union: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tp_iou: float = 0.0  # Σ IoU of the matched pairs

    def __add__(self, other: ImageStats) -> ImageStats:
        return ImageStats(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_array(self) -> np.ndarray:
        return np.array([float(v) for v in asdict(self).values()])

    @classmethod
    def from_array(cls, values) -> ImageStats:
        names = [f.name for f in fields(cls)]
        return cls(
            **{
                n: (float(v) if n == "tp_iou" else int(round(float(v))))
                for n, v in zip(names, values)
            }
        )


def _ratio(numerator: float, denominator: float, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return float(numerator) / float(denominator)


def _hungarian_pairs(table: OverlapTable) -> np.ndarray:
    """Indices of the pairs chosen by maximum-IoU one-to-one assignment (IoU > 0 only)."""
    if len(table.pair_gt) == 0:
        return np.zeros(0, dtype=np.int64)
    rows, row_of = np.unique(table.pair_gt, return_inverse=True)
    cols, col_of = np.unique(table.pair_pred, return_inverse=True)
    iou = np.zeros((len(rows), len(cols)))
    pair_index = np.full((len(rows), len(cols)), -1, dtype=np.int64)
    iou[row_of, col_of] = table.pair_iou
    pair_index[row_of, col_of] = np.arange(len(table.pair_gt))
    r, c = linear_sum_assignment(iou, maximize=True)
    chosen = pair_index[r, c]
    return chosen[chosen >= 0]


def image_stats(table: OverlapTable) -> ImageStats:
    """All sufficient statistics of one image pair from its overlap table."""
    inter, union, iou = table.pair_intersection, table.pair_union, table.pair_iou
    gt_area, pred_area = table.gt_area, table.pred_area

    best = best_pair_per_owner(table.pair_gt, table.pair_pred, table.pair_iou)
    used_pred = np.zeros(table.n_pred, dtype=bool)
    used_pred[table.pair_pred[best]] = True
    gt_matched = np.zeros(table.n_gt, dtype=bool)
    gt_matched[table.pair_gt[best]] = True
    aji_i = int(inter[best].sum())
    aji_u = int(union[best].sum() + gt_area[~gt_matched].sum() + pred_area[~used_pred].sum())

    chosen = _hungarian_pairs(table)
    matched_gt = np.zeros(table.n_gt, dtype=bool)
    matched_gt[table.pair_gt[chosen]] = True
    matched_pred = np.zeros(table.n_pred, dtype=bool)
    matched_pred[table.pair_pred[chosen]] = True
    ajip_i = int(inter[chosen].sum())
    ajip_u = int(union[chosen].sum() + gt_area[~matched_gt].sum() + pred_area[~matched_pred].sum())

    tp_mask = iou > 0.5
    tp = int(tp_mask.sum())
    return ImageStats(
        n_gt=table.n_gt,
        n_pred=table.n_pred,
        fg_intersection=int(inter.sum()),
        fg_total=int(gt_area.sum() + pred_area.sum()),
        pair_intersection=int(inter.sum()),
        pair_total=int(gt_area[table.pair_gt].sum() + pred_area[table.pair_pred].sum()),
        aji_intersection=aji_i,
        aji_union=aji_u,
        aji_plus_intersection=ajip_i,
        aji_plus_union=ajip_u,
        tp=tp,
        fp=table.n_pred - tp,
        fn=table.n_gt - tp,
        tp_iou=float(iou[tp_mask].sum()),
    )


def scores_from_stats(stats: ImageStats) -> dict[str, float]:
    """Every overlap score as a ratio of the statistics (one image, or summed over many)."""
    empty = stats.n_gt == 0 and stats.n_pred == 0
    d1 = _ratio(2 * stats.fg_intersection, stats.fg_total, empty)
    d2 = _ratio(2 * stats.pair_intersection, stats.pair_total, empty)
    dq = _ratio(stats.tp, stats.tp + 0.5 * stats.fp + 0.5 * stats.fn, empty)
    sq = _ratio(stats.tp_iou, stats.tp, empty)
    return {
        "dice": d1,
        "dice2": d2,
        "dice_avg": 0.5 * (d1 + d2),
        "aji": _ratio(stats.aji_intersection, stats.aji_union, empty),
        "aji_plus": _ratio(stats.aji_plus_intersection, stats.aji_plus_union, empty),
        "dq": dq,
        "sq": sq,
        "pq": dq * sq,
        "f1": dq,
        "precision": _ratio(stats.tp, stats.tp + stats.fp, empty),
        "recall": _ratio(stats.tp, stats.tp + stats.fn, empty),
    }


def object_dice_from_table(table: OverlapTable) -> float:
    """GlaS object-level Dice: area-weighted Dice of each object with its best-overlap partner."""
    if table.n_gt == 0 and table.n_pred == 0:
        return 1.0
    if table.n_gt == 0 or table.n_pred == 0:
        return 0.0
    pair_dice = (
        2
        * table.pair_intersection
        / (table.gt_area[table.pair_gt] + table.pred_area[table.pair_pred])
    )

    def side(owner: np.ndarray, other: np.ndarray, area: np.ndarray) -> float:
        best = best_pair_per_owner(owner, other, table.pair_intersection)
        per_object = np.zeros(len(area))
        per_object[owner[best]] = pair_dice[best]
        return float((area * per_object).sum() / area.sum())

    return 0.5 * (
        side(table.pair_gt, table.pair_pred, table.gt_area)
        + side(table.pair_pred, table.pair_gt, table.pred_area)
    )


def evaluate_pair(gt, pred, hd95: bool = True, object_level: bool = True):
    """Every metric of one image pair and its sufficient statistics, from one overlap table.

    Returns ``(scores, stats)``: the overlap scores of :func:`scores_from_stats` plus
    ``object_dice`` and the distances ``hausdorff`` (and ``hd95``) and ``object_hausdorff``
    in pixels; and the :class:`ImageStats` for dataset aggregation.
    """
    table = overlap_table(gt, pred)
    stats = image_stats(table)
    scores = scores_from_stats(stats)
    gt_map, pred_map = np.asarray(_cpu(gt)), np.asarray(_cpu(pred))
    scores.update(hausdorff_distance(gt_map, pred_map, with_hd95=hd95))
    if object_level:
        scores["object_dice"] = object_dice_from_table(table)
        scores["object_hausdorff"] = object_hausdorff(gt_map, pred_map, table)
    return scores, stats


def compute_all(gt, pred, hd95: bool = True, object_level: bool = True) -> dict[str, float]:
    """Every metric of one image pair (see :func:`evaluate_pair`)."""
    return evaluate_pair(gt, pred, hd95, object_level)[0]


def _cpu(label):
    return label.detach().cpu().numpy() if hasattr(label, "detach") else label


# -- single-metric conveniences (each builds its own table; use compute_all for several) ------
def _score(name: str):
    def metric(gt, pred) -> float:
        return scores_from_stats(image_stats(overlap_table(gt, pred)))[name]

    metric.__name__ = name
    metric.__doc__ = f"``{name}`` of one image pair; see the module docstring for conventions."
    return metric


dice = _score("dice")
dice2 = _score("dice2")
dice_avg = _score("dice_avg")
aji = _score("aji")
aji_plus = _score("aji_plus")


def panoptic_quality(gt, pred) -> dict[str, float]:
    """``{"dq", "sq", "pq", "f1", "precision", "recall"}`` of one image pair."""
    scores = scores_from_stats(image_stats(overlap_table(gt, pred)))
    return {k: scores[k] for k in ("dq", "sq", "pq", "f1", "precision", "recall")}


def object_dice(gt, pred) -> float:
    """GlaS object-level Dice of one image pair."""
    return object_dice_from_table(overlap_table(gt, pred))
