"""The torchmetrics state: per-image means vs aggregate ratios, and DDP-style merging."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from histo_gan.metrics import NucleusMetrics, compute_all, make_metric_collection


def two_images():
    # Image 1: perfect, one 4-px nucleus. Image 2: a 12-px nucleus predicted as 4 px.
    gt1 = np.zeros((4, 4), np.int32)
    gt1[0:2, 0:2] = 1
    gt2 = np.zeros((4, 4), np.int32)
    gt2[0:3, 0:4] = 1
    pred2 = np.zeros((4, 4), np.int32)
    pred2[0:1, 0:4] = 5
    return [(gt1, gt1.copy()), (gt2, pred2)]


def test_per_image_mean_and_aggregate_ratio_by_hand():
    collection = make_metric_collection("val/")
    for gt, pred in two_images():
        collection.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
    values = collection.compute()
    # AJI per image: 1 and 4/12 -> mean 2/3; aggregate: (4 + 4) / (4 + 12) = 1/2.
    assert values["val/aji"].item() == pytest.approx(2 / 3, abs=1e-6)
    assert values["val/aggregate/aji"].item() == pytest.approx(0.5, abs=1e-6)
    # Dice per image: 1 and 8/16 -> 3/4; aggregate 2*(4+4) / (8 + 16) = 2/3.
    assert values["val/dice"].item() == pytest.approx(0.75, abs=1e-6)
    assert values["val/aggregate/dice"].item() == pytest.approx(2 / 3, abs=1e-6)
    # PQ: image 2 has IoU 1/3, no match; aggregate TP 1, FP 1, FN 1 -> DQ 1/2, SQ 1.
    assert values["val/aggregate/pq"].item() == pytest.approx(0.5, abs=1e-6)
    assert values["val/num_images"].item() == 2
    expected_hd = np.mean([compute_all(g, p)["hausdorff"] for g, p in two_images()])
    assert values["val/hausdorff"].item() == pytest.approx(expected_hd, abs=1e-5)


def test_fixed_names_for_every_module():
    collection = make_metric_collection("test/")
    gt, pred = two_images()[1]
    collection.update(pred, gt)
    names = set(collection.compute())
    for base in (
        "dice",
        "aji",
        "aji_plus",
        "pq",
        "dq",
        "sq",
        "f1",
        "hausdorff",
        "hd95",
        "object_dice",
        "object_hausdorff",
        "dice2",
        "dice_avg",
    ):
        assert f"test/{base}" in names
    assert "test/aggregate/aji" in names and "test/aggregate/hausdorff" not in names


def test_merged_states_equal_one_process_seeing_everything():
    """What DDP does: each process scores its images, states are concatenated and summed."""
    pairs = two_images() * 2
    single, rank0, rank1 = NucleusMetrics(), NucleusMetrics(), NucleusMetrics()
    for k, (gt, pred) in enumerate(pairs):
        single.update(pred, gt)
        (rank0 if k % 2 == 0 else rank1).update(pred, gt)
    rank0.merge_state(rank1)
    merged, alone = rank0.compute(), single.compute()
    assert merged.keys() == alone.keys()
    for name in alone:
        assert torch.allclose(merged[name], alone[name]), name


def test_batched_update_and_reset():
    metric = NucleusMetrics()
    gts = torch.from_numpy(np.stack([g for g, _ in two_images()]))
    preds = torch.from_numpy(np.stack([p for _, p in two_images()]))
    metric.update(preds, gts)
    assert metric.compute()["num_images"].item() == 2
    assert len(metric.per_image()) == 2 and metric.per_image()[0]["aji"] == 1.0
    metric.reset()
    assert metric.compute()["num_images"].item() == 0
    with pytest.raises(ValueError, match="pred has 2 maps but gt has 1"):
        metric.update(preds, gts[:1])
