"""Every metric on small label maps whose answers are worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from histo_gan.metrics import aji, aji_plus, compute_all, dice, dice2, object_dice, panoptic_quality
from tests.metrics_oracle import DISTANCE_SCORES, OVERLAP_SCORES


def approx(x):
    return pytest.approx(x, abs=1e-12)


def test_one_prediction_covering_two_nuclei():
    gt = np.zeros((2, 5), dtype=np.int32)
    gt[:, 0:2], gt[:, 3:5] = 1, 2  # two 2x2 nuclei, background column 2
    pred = np.full((2, 5), 7, dtype=np.int32)  # one 10-px object over both
    m = compute_all(gt, pred)
    assert m["dice"] == approx(16 / 18)  # 2*8 / (8 + 10)
    assert m["dice2"] == approx(16 / 28)  # pairs (G1,P)+(G2,P): 2*(4+4) / (14+14)
    assert m["aji"] == approx(8 / 20)  # P serves both: C = 4+4, U = 10+10
    assert m["aji_plus"] == approx(4 / 14)  # one-to-one: G1-P (C 4, U 10) + unmatched G2 (4)
    assert (m["dq"], m["sq"], m["pq"]) == (0.0, 0.0, 0.0)  # IoU 0.4: no match
    assert (m["precision"], m["recall"]) == (0.0, 0.0)
    assert m["object_dice"] == approx(8 / 14)  # every object's partner Dice is 2*4/14
    assert m["hausdorff"] == approx(1.0)  # the background column is 1 px from a nucleus
    assert m["hd95"] == approx(1.0)  # 2 of 10 pred pixels at distance 1: p95 interpolates 1..1
    assert m["object_hausdorff"] == approx(3.0)  # far column of P is 3 px from each nucleus


def test_one_nucleus_split_in_two_with_non_contiguous_ids():
    gt = np.zeros((2, 4), dtype=np.int64)
    gt[:, :] = 3
    pred = np.zeros((2, 4), dtype=np.int64)
    pred[:, 0:2], pred[:, 2:4] = 5, 9
    m = compute_all(gt, pred)
    assert m["dice"] == approx(1.0)  # same foreground
    assert m["dice2"] == approx(16 / 24)  # 2*(4+4) / ((8+4) + (8+4))
    assert m["aji"] == approx(4 / 12)  # IoU tie 0.5/0.5 -> id 5; C 4, U 8 + unused id 9 (4)
    assert m["aji_plus"] == approx(4 / 12)
    assert m["pq"] == 0.0 and m["dq"] == 0.0  # IoU exactly 0.5 is not a match
    assert m["object_dice"] == approx(2 / 3)  # 2*4/(8+4) for every object
    assert m["hausdorff"] == 0.0 and m["hd95"] == 0.0
    assert m["object_hausdorff"] == approx(2.0)  # each half is 2 px from the far end of G


def test_ghost_object():
    gt = np.zeros((4, 6), dtype=np.int32)
    gt[0:2, 0:2] = 1
    pred = gt.copy()
    pred[3, 4:6] = 2  # a 2-px ghost, not in the ground truth
    m = compute_all(gt, pred)
    assert m["dice"] == approx(8 / 10)
    assert m["dice2"] == approx(1.0)  # only the true pair overlaps
    assert m["aji"] == approx(4 / 6) and m["aji_plus"] == approx(4 / 6)
    assert m["dq"] == approx(2 / 3) and m["sq"] == approx(1.0) and m["pq"] == approx(2 / 3)
    assert m["precision"] == approx(0.5) and m["recall"] == approx(1.0)
    assert m["object_dice"] == approx(0.5 * (1.0 + 4 / 6))  # ghost: Dice 0, weight 2/6
    assert m["hausdorff"] == approx(math.sqrt(20))  # ghost pixel (3,5) to gt pixel (1,1)
    # object Hausdorff: the ghost pairs with the nearest gt object, H = 5 ((0,0) to (3,4));
    # pred side = 4/6 * 0 + 2/6 * 5, gt side = 0.
    assert m["object_hausdorff"] == approx(0.5 * (2 / 6 * 5))


def test_iou_exactly_one_half_is_not_a_match_but_above_is():
    gt = np.zeros((1, 6), dtype=np.int32)
    gt[0, 0:4] = 1
    half = np.zeros_like(gt)
    half[0, 0:2] = 1  # IoU 2/4
    three_quarters = np.zeros_like(gt)
    three_quarters[0, 0:3] = 1  # IoU 3/4
    assert panoptic_quality(gt, half)["dq"] == 0.0
    assert aji(gt, half) == approx(0.5) and dice(gt, half) == approx(4 / 6)
    pq = panoptic_quality(gt, three_quarters)
    assert pq["dq"] == 1.0 and pq["sq"] == approx(0.75) and pq["pq"] == approx(0.75)


def test_both_empty_and_one_empty():
    empty = np.zeros((3, 4), dtype=np.int32)
    one = empty.copy()
    one[1, 1] = 4
    both = compute_all(empty, empty)
    for name in OVERLAP_SCORES:
        assert both[name] == 1.0, name
        assert compute_all(empty, one)[name] == 0.0, name
        assert compute_all(one, empty)[name] == 0.0, name
    for name in DISTANCE_SCORES:
        assert both[name] == 0.0
        assert compute_all(empty, one)[name] == approx(5.0)  # diagonal of 3x4
        assert compute_all(one, empty)[name] == approx(5.0)


def test_single_metric_functions_and_torch_inputs_agree():
    gt = torch.zeros(5, 5, dtype=torch.int32)
    gt[0:2, 0:2], gt[3:5, 3:5] = 1, 2
    pred = torch.zeros(5, 5, dtype=torch.int64)
    pred[0:2, 0:3] = 8
    m = compute_all(gt.numpy(), pred.numpy())
    assert dice(gt, pred) == m["dice"] and dice2(gt, pred) == m["dice2"]
    assert aji(gt, pred) == m["aji"] and aji_plus(gt, pred) == m["aji_plus"]
    assert object_dice(gt, pred) == m["object_dice"]
    # G1 (4 px) vs P (6 px): IoU 4/6 > 0.5 -> TP; G2 missed.
    assert panoptic_quality(gt, pred)["dq"] == approx(1 / 1.5)


@pytest.mark.parametrize(
    "gt,pred,message",
    [
        (np.zeros((3, 3), np.float32), np.zeros((3, 3), np.int32), "gt: .*integer.*float32"),
        (np.zeros((3, 3), np.int32), -np.ones((3, 3), np.int32), "pred: .*negative"),
        (np.zeros((3, 3), np.int32), np.zeros((3, 4), np.int32), "shapes differ"),
        (np.zeros((2, 3, 3), np.int32), np.zeros((2, 3, 3), np.int32), "gt: .*2-D"),
        (np.zeros((3, 3), bool), np.zeros((3, 3), np.int32), "gt: .*integer.*bool"),
        (torch.zeros(3, 3), torch.zeros(3, 3, dtype=torch.int64), "gt: .*integer"),
    ],
)
def test_bad_input_is_a_clear_value_error(gt, pred, message):
    with pytest.raises(ValueError, match=message):
        compute_all(gt, pred)


def test_aji_breaks_iou_ties_by_the_smallest_prediction_id():
    gt = np.zeros((3, 4), dtype=np.int32)
    gt[0:2, :] = 1  # 8 px
    pred = np.zeros_like(gt)
    pred[0, 0:2] = 4  # inside G only: IoU 2/8
    pred[1, 0:3] = 6
    pred[2, :] = 6  # 3 px inside G, 4 outside: IoU 3/12, the same
    # id 4 wins: C = 2, U = 8 + unused id 6 (7 px) = 15. (Id 6 would give 3/14.)
    assert aji(gt, pred) == approx(2 / 15)
    # Object Dice picks by overlap, not IoU: id 6 (3 px) is G's partner.
    gt_side = 2 * 3 / (8 + 7)
    pred_side = (2 / 9) * (2 * 2 / (2 + 8)) + (7 / 9) * (2 * 3 / (7 + 8))
    assert object_dice(gt, pred) == approx(0.5 * (gt_side + pred_side))
