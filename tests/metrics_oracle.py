"""A deliberately plain, per-object reference implementation of every metric.

Written straight from the definitions in METRICS.md, one object at a time, rescanning the
image for each object: slow, obviously correct, and independent of the overlap table of
``histo_gan.metrics``. The property tests compare against it, and
``benchmarks/metrics_speed.py`` uses it as the baseline. Tie rules are the documented ones:
AJI and object-level partners take the smallest id among equals; AJI+ runs scipy's
``linear_sum_assignment`` on the IoU matrix of the objects that overlap anything, rows and
columns in id order.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist, directed_hausdorff

# Every score of METRICS.md, by kind: the overlap scores are 1 on identical label maps and the
# distances (pixels) 0.
OVERLAP_SCORES = tuple(
    "dice dice2 dice_avg aji aji_plus dq sq pq f1 precision recall object_dice".split()
)
DISTANCE_SCORES = ("hausdorff", "hd95", "object_hausdorff")


def ids(label):
    return [int(i) for i in np.unique(label) if i != 0]


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 0.0


def dice(gt, pred):
    g, p = gt > 0, pred > 0
    total = g.sum() + p.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(g, p).sum() / total


def dice2(gt, pred):
    if not ids(gt) and not ids(pred):
        return 1.0
    inter = total = 0
    for i in ids(gt):
        g = gt == i
        for j in ids(pred[g]):
            p = pred == j
            inter += np.logical_and(g, p).sum()
            total += g.sum() + p.sum()
    return 2.0 * inter / total if total else 0.0


def aji(gt, pred):
    if not ids(gt) and not ids(pred):
        return 1.0
    c = u = 0
    used = set()
    for i in ids(gt):
        g = gt == i
        best, best_iou = None, -1.0
        for j in ids(pred[g]):  # ascending ids: strict > keeps the smallest id on ties
            value = iou(g, pred == j)
            if value > best_iou:
                best, best_iou = j, value
        if best is None:
            u += g.sum()
        else:
            p = pred == best
            c += np.logical_and(g, p).sum()
            u += np.logical_or(g, p).sum()
            used.add(best)
    for j in ids(pred):
        if j not in used:
            u += (pred == j).sum()
    return c / u if u else 0.0


def aji_plus(gt, pred):
    if not ids(gt) and not ids(pred):
        return 1.0
    rows = [i for i in ids(gt) if (pred[gt == i] > 0).any()]
    cols = [j for j in ids(pred) if (gt[pred == j] > 0).any()]
    matrix = np.zeros((len(rows), len(cols)))
    for r, i in enumerate(rows):
        g = gt == i
        for j in ids(pred[g]):  # pairs that do not overlap have IoU 0
            matrix[r, cols.index(j)] = iou(g, pred == j)
    c = u = 0
    matched_g, matched_p = set(), set()
    if matrix.size:
        for r, k in zip(*linear_sum_assignment(matrix, maximize=True)):
            if matrix[r, k] > 0:
                g, p = gt == rows[r], pred == cols[k]
                c += np.logical_and(g, p).sum()
                u += np.logical_or(g, p).sum()
                matched_g.add(rows[r])
                matched_p.add(cols[k])
    u += sum((gt == i).sum() for i in ids(gt) if i not in matched_g)
    u += sum((pred == j).sum() for j in ids(pred) if j not in matched_p)
    return c / u if u else 0.0


def panoptic(gt, pred):
    g_ids, p_ids = ids(gt), ids(pred)
    if not g_ids and not p_ids:
        return dict(dq=1.0, sq=1.0, pq=1.0, f1=1.0, precision=1.0, recall=1.0)
    tp, tp_iou = 0, 0.0
    for i in g_ids:
        g = gt == i
        for j in ids(pred[g]):
            value = iou(g, pred == j)
            if value > 0.5:
                tp += 1
                tp_iou += value
    fp, fn = len(p_ids) - tp, len(g_ids) - tp
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = tp_iou / tp if tp else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return dict(dq=dq, sq=sq, pq=dq * sq, f1=dq, precision=precision, recall=recall)


def _points(mask):
    return np.argwhere(mask).astype(float)


def _hausdorff(a, b):
    pa, pb = _points(a), _points(b)
    return max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])


def hausdorff(gt, pred):
    a, b = gt > 0, pred > 0
    if not a.any() and not b.any():
        return 0.0, 0.0
    if not a.any() or not b.any():
        diagonal = math.hypot(*gt.shape)
        return diagonal, diagonal
    distances = cdist(_points(a), _points(b))
    from_a, from_b = distances.min(axis=1), distances.min(axis=0)
    return float(max(from_a.max(), from_b.max())), float(
        max(np.percentile(from_a, 95), np.percentile(from_b, 95))
    )


def _partner(owner_map, owner_id, other_map):
    """Id of the other map's object that overlaps most (smallest id on ties), or None."""
    mask = owner_map == owner_id
    best, best_overlap = None, 0
    for j in ids(other_map[mask]):
        overlap = np.logical_and(mask, other_map == j).sum()
        if overlap > best_overlap:
            best, best_overlap = j, overlap
    return best


def object_dice(gt, pred):
    if not ids(gt) and not ids(pred):
        return 1.0
    if not ids(gt) or not ids(pred):
        return 0.0

    def side(owner, other):
        total_area = (owner > 0).sum()
        value = 0.0
        for i in ids(owner):
            mask = owner == i
            j = _partner(owner, i, other)
            if j is not None:
                partner = other == j
                d = 2 * np.logical_and(mask, partner).sum() / (mask.sum() + partner.sum())
                value += mask.sum() / total_area * d
        return value

    return 0.5 * (side(gt, pred) + side(pred, gt))


def object_hausdorff(gt, pred):
    if not ids(gt) and not ids(pred):
        return 0.0
    if not ids(gt) or not ids(pred):
        return math.hypot(*gt.shape)

    def side(owner, other):
        total_area = (owner > 0).sum()
        value = 0.0
        for i in ids(owner):
            mask = owner == i
            j = _partner(owner, i, other)
            if j is not None:
                h = _hausdorff(mask, other == j)
            else:
                h = min(_hausdorff(mask, other == k) for k in ids(other))
            value += mask.sum() / total_area * h
        return value

    return 0.5 * (side(gt, pred) + side(pred, gt))


def overlap_metrics(gt, pred) -> dict[str, float]:
    """Every overlap score (what the benchmark times)."""
    d1, d2 = dice(gt, pred), dice2(gt, pred)
    return dict(
        dice=d1,
        dice2=d2,
        dice_avg=0.5 * (d1 + d2),
        aji=aji(gt, pred),
        aji_plus=aji_plus(gt, pred),
        object_dice=object_dice(gt, pred),
        **panoptic(gt, pred),
    )


def all_metrics(gt, pred) -> dict[str, float]:
    hd, hd95 = hausdorff(gt, pred)
    return dict(
        **overlap_metrics(gt, pred),
        hausdorff=hd,
        hd95=hd95,
        object_hausdorff=object_hausdorff(gt, pred),
    )
