"""On real MoNuSeg label maps: perfect self-agreement, and perturbations move every metric the right way."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from histo_gan.data.readers import read_label_map
from histo_gan.metrics import compute_all
from tests.metrics_oracle import DISTANCE_SCORES, OVERLAP_SCORES

pytestmark = pytest.mark.real_data

IMAGES = ("TCGA-21-5784-01Z-00-DX1", "TCGA-E2-A14V-01Z-00-DX1")


def erode_each_nucleus(label):
    """Remove the outer pixel ring of every nucleus (keeping ids)."""
    interior = ndimage.grey_erosion(label, size=3) == ndimage.grey_dilation(label, size=3)
    return np.where(interior, label, 0)


def drop_nuclei(label, fraction, seed=0):
    ids = np.unique(label)[1:]
    dropped = np.random.default_rng(seed).choice(
        ids, int(round(fraction * len(ids))), replace=False
    )
    return np.where(np.isin(label, dropped), 0, label)


@pytest.fixture(scope="module", params=IMAGES)
def gt(request, shared_data):
    return read_label_map(shared_data / "instance_masks" / f"{request.param}.png")


def test_a_map_against_itself_is_perfect(gt):
    scores = compute_all(gt, gt)
    assert all(scores[name] == 1.0 for name in OVERLAP_SCORES)
    assert all(scores[name] == 0.0 for name in DISTANCE_SCORES)


def test_eroding_by_one_pixel_moves_every_metric_down(gt):
    eroded = erode_each_nucleus(gt)
    scores = compute_all(gt, eroded)
    for name in ("dice", "dice2", "aji", "aji_plus", "sq", "pq", "object_dice"):
        assert scores[name] < 0.97, name
    assert scores["precision"] > 0.8  # most nuclei still match with IoU > 0.5
    assert 1.0 <= scores["hausdorff"] and scores["object_hausdorff"] > 0


def test_dropping_ten_percent_of_nuclei(gt):
    dropped = drop_nuclei(gt, 0.10)
    scores = compute_all(gt, dropped)
    n = len(np.unique(gt)) - 1
    kept = len(np.unique(dropped)) - 1
    assert scores["precision"] == 1.0 and scores["sq"] == 1.0
    assert scores["recall"] == pytest.approx(kept / n)
    assert scores["dq"] == pytest.approx(kept / (kept + 0.5 * (n - kept)))
    # In units of the gt foreground: the kept nuclei match exactly, the dropped ones are lost.
    kept_area = (dropped > 0).sum() / (gt > 0).sum()
    assert kept_area < 0.95
    assert scores["dice"] == pytest.approx(2 * kept_area / (1 + kept_area))
    assert scores["aji"] == pytest.approx(kept_area) and scores["aji_plus"] == pytest.approx(
        kept_area
    )
    assert scores["pq"] == pytest.approx(scores["dq"]) and scores["f1"] == scores["dq"]
    # GlaS object Dice: dropped nuclei score 0 on the gt side, the pred side is perfect.
    assert scores["object_dice"] == pytest.approx(0.5 * (kept_area + 1.0))
    assert scores["hausdorff"] > 0
    # Both perturbations together are worse than either alone.
    both = compute_all(gt, erode_each_nucleus(dropped))
    assert both["aji"] < min(scores["aji"], compute_all(gt, erode_each_nucleus(gt))["aji"])
