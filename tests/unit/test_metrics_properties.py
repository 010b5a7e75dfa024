"""Property tests: the fast metrics equal the per-object oracle on random label maps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from histo_gan.metrics import compute_all
from tests import metrics_oracle as oracle

ALL = oracle.OVERLAP_SCORES + oracle.DISTANCE_SCORES
# Scores with no tie rule: invariant to any relabelling and symmetric in (gt, pred).
TIE_FREE_SYMMETRIC = ("dice", "dice2", "dice_avg", "dq", "sq", "pq", "f1", "hausdorff", "hd95")


@st.composite
def label_maps(draw, shape=None):
    """Random rectangles with random (non-contiguous) ids drawn over each other."""
    if shape is None:
        shape = (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
    label = np.zeros(shape, dtype=np.int64)
    for _ in range(draw(st.integers(0, 6))):
        y0, x0 = draw(st.integers(0, shape[0] - 1)), draw(st.integers(0, shape[1] - 1))
        h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        label[y0 : y0 + h, x0 : x0 + w] = draw(st.integers(1, 500))
    return label


@st.composite
def pairs(draw):
    gt = draw(label_maps())
    if draw(st.booleans()):  # a perturbed copy, so that many objects overlap
        pred = gt.copy()
        extra = draw(label_maps(shape=gt.shape))
        pred[extra > 0] = extra[extra > 0]
        pred[draw(label_maps(shape=gt.shape)) > 0] = 0
    else:
        pred = draw(label_maps(shape=gt.shape))
    return gt, pred


@settings(max_examples=150, deadline=None)
@given(pairs())
def test_equal_to_the_oracle(pair):
    gt, pred = pair
    fast, slow = compute_all(gt, pred), oracle.all_metrics(gt, pred)
    for name in ALL:
        assert abs(fast[name] - slow[name]) <= 1e-9, (name, fast[name], slow[name])


def relabel(label, mapping):
    out = np.zeros_like(label)
    for old, new in mapping.items():
        out[label == old] = new
    return out


@settings(max_examples=80, deadline=None)
@given(pairs(), st.randoms(use_true_random=False))
def test_invariant_to_relabelling(pair, rng):
    gt, pred = pair
    before = compute_all(gt, pred)
    g_ids = [int(i) for i in np.unique(gt) if i]
    p_ids = [int(i) for i in np.unique(pred) if i]
    # order-preserving relabelling keeps every score, tie rules included
    monotone = compute_all(
        relabel(gt, {i: 3 * i + 1000 for i in g_ids}), relabel(pred, {j: 7 * j + 1 for j in p_ids})
    )
    for name in ALL:
        assert abs(before[name] - monotone[name]) <= 1e-12, name
    # any permutation keeps the scores that have no tie rule
    shuffled_g, shuffled_p = g_ids[:], p_ids[:]
    rng.shuffle(shuffled_g)
    rng.shuffle(shuffled_p)
    permuted = compute_all(
        relabel(gt, dict(zip(g_ids, shuffled_g))), relabel(pred, dict(zip(p_ids, shuffled_p)))
    )
    for name in TIE_FREE_SYMMETRIC:
        assert abs(before[name] - permuted[name]) <= 1e-12, name


@settings(max_examples=80, deadline=None)
@given(pairs())
def test_symmetric_metrics_are_symmetric(pair):
    gt, pred = pair
    forward, backward = compute_all(gt, pred), compute_all(pred, gt)
    for name in TIE_FREE_SYMMETRIC:
        assert abs(forward[name] - backward[name]) <= 1e-12, name
    # precision and recall swap roles
    assert abs(forward["precision"] - backward["recall"]) <= 1e-12
