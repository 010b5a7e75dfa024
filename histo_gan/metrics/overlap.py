"""The pairwise overlap table of two instance label maps: one pass over the pixels.

Every overlap-based metric (Dice, ensemble Dice, AJI, AJI+, DQ/SQ/PQ, F1, object Dice) is a
function of this table; nothing rescans the image per object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "OverlapTable",
    "as_label_map",
    "best_pair_per_owner",
    "check_pair",
    "compact_ids",
    "overlap_table",
]

# Above this many (gt, pred) cells the intersection counts come from np.unique on the
# overlapping pixels instead of a dense bincount.
_DENSE_CELLS = 4_000_000


def as_label_map(label, name: str) -> np.ndarray:
    """Validate an instance label map (numpy array or torch tensor on any device).

    Returns an ``int64`` numpy array. Tensors are moved to the CPU: the metrics are computed
    with numpy/scipy whatever the device.

    Raises:
        ValueError: naming ``name``, for non-2-D input, a float/bool/complex dtype or
            negative ids.
    """
    if isinstance(label, torch.Tensor):
        if label.is_floating_point() or label.is_complex() or label.dtype == torch.bool:
            raise ValueError(f"{name}: instance label map must be integer, got {label.dtype}")
        label = label.detach().cpu().numpy()
    label = np.asarray(label)
    if label.dtype == bool or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"{name}: instance label map must be integer, got {label.dtype}")
    if label.ndim != 2:
        raise ValueError(f"{name}: instance label map must be 2-D (H, W), got shape {label.shape}")
    if label.size and label.min() < 0:
        raise ValueError(f"{name}: instance label map has negative ids (min {label.min()})")
    return label.astype(np.int64, copy=False)


def check_pair(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    """Validate both maps and their shapes; returns ``(gt, pred)`` as ``int64`` numpy."""
    gt, pred = as_label_map(gt, "gt"), as_label_map(pred, "pred")
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred shapes differ: {gt.shape} vs {pred.shape}")
    return gt, pred


def compact_ids(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel ids to ``1..n`` in increasing order of the original id (0 stays 0).

    Returns ``(compact, original_ids)`` with ``original_ids[k - 1]`` the id of compact ``k``.
    """
    top = int(label.max(initial=0))
    if top < 4 * label.size + 1024:  # a lookup table is cheaper than sorting the pixels
        present = np.bincount(label.ravel(), minlength=top + 1) > 0
        present[0] = False
        original = np.flatnonzero(present)
        lookup = np.zeros(top + 1, dtype=np.int64)
        lookup[original] = np.arange(1, len(original) + 1)
        return lookup[label], original
    original, inverse = np.unique(label, return_inverse=True)
    if original[0] == 0:
        return inverse.reshape(label.shape), original[1:]
    return inverse.reshape(label.shape) + 1, original


@dataclass(frozen=True)
class OverlapTable:
    """Pixel counts of every object and of every overlapping (gt, pred) pair.

    Attributes:
        gt_ids, pred_ids: original ids, ascending; ``(n_gt,)``, ``(n_pred,)``.
        gt_area, pred_area: pixels per object, ``int64``.
        pair_gt, pair_pred: indices (0-based, into ``gt_ids``/``pred_ids``) of the pairs that
            share at least one pixel, sorted by ``(gt, pred)``.
        pair_intersection: shared pixels of each such pair, ``int64``.
        shape: the ``(H, W)`` of the maps.
    """

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray
    pair_gt: np.ndarray
    pair_pred: np.ndarray
    pair_intersection: np.ndarray
    shape: tuple[int, int]

    @property
    def n_gt(self) -> int:
        return len(self.gt_ids)

    @property
    def n_pred(self) -> int:
        return len(self.pred_ids)

    @property
    def pair_union(self) -> np.ndarray:
        return self.gt_area[self.pair_gt] + self.pred_area[self.pair_pred] - self.pair_intersection

    @property
    def pair_iou(self) -> np.ndarray:
        return self.pair_intersection / self.pair_union


def overlap_table(gt, pred) -> OverlapTable:
    """Build the :class:`OverlapTable` of two instance label maps in one pass."""
    gt, pred = check_pair(gt, pred)
    g, gt_ids = compact_ids(gt)
    p, pred_ids = compact_ids(pred)
    n_g, n_p = len(gt_ids), len(pred_ids)
    gt_area = np.bincount(g.ravel(), minlength=n_g + 1)[1:].astype(np.int64)
    pred_area = np.bincount(p.ravel(), minlength=n_p + 1)[1:].astype(np.int64)
    both = (g > 0) & (p > 0)
    codes = (g[both] - 1) * n_p + (p[both] - 1)
    if n_g * n_p <= _DENSE_CELLS:
        counts = np.bincount(codes, minlength=n_g * n_p)
        cells = np.flatnonzero(counts)
        intersection = counts[cells]
    else:
        cells, intersection = np.unique(codes, return_counts=True)
    pair_gt, pair_pred = (
        (cells // max(n_p, 1)).astype(np.int64),
        (cells % max(n_p, 1)).astype(np.int64),
    )
    return OverlapTable(
        gt_ids,
        pred_ids,
        gt_area,
        pred_area,
        pair_gt,
        pair_pred,
        intersection.astype(np.int64),
        (int(gt.shape[0]), int(gt.shape[1])),
    )


def best_pair_per_owner(owner: np.ndarray, other: np.ndarray, score: np.ndarray) -> np.ndarray:
    """For each distinct ``owner`` index, the pair (index into the arrays) of highest ``score``.

    Ties go to the pair with the smallest ``other`` index (the smallest id). Owners without any
    pair are absent from the result.
    """
    if len(owner) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((other, -score, owner))
    first = np.ones(len(order), dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    return order[first]
