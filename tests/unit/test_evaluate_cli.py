from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import tifffile

from histo_gan.callbacks.instance_writer import write_label_map
from histo_gan.cli import main
from histo_gan.data.readers import DataError
from histo_gan.evaluate import main as evaluate_main
from histo_gan.metrics import compute_all


def make_maps(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    truths = {}
    for k in range(3):
        gt = np.zeros((24, 24), np.int32)
        for i in range(1, 6):
            y, x = rng.integers(0, 20, 2)
            gt[y : y + 4, x : x + 4] = i
        pred = np.roll(gt, k, axis=1)
        truths[f"img{k}"] = (gt, pred)
        write_label_map(tmp_path / "gt" / f"img{k}", gt)
    tifffile.imwrite(tmp_path / "pred" / "img0.tif", truths["img0"][1])
    np.save(tmp_path / "pred" / "img1.npy", truths["img1"][1])
    scipy.io.savemat(tmp_path / "pred" / "img2.mat", {"inst_map": truths["img2"][1]})
    return truths


def test_scores_every_pair_and_writes_csv_and_json(tmp_path, capsys):
    truths = make_maps(tmp_path)
    assert (
        main(
            [
                "evaluate",
                "--pred",
                str(tmp_path / "pred"),
                "--gt",
                str(tmp_path / "gt"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "img0" in printed and "mean (per image)" in printed and "aggregate" in printed
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    expected = np.mean([compute_all(g, p)["aji"] for g, p in truths.values()])
    assert summary["num_images"] == 3
    assert summary["per_image"]["aji"] == pytest.approx(expected)
    assert summary["per_image"]["dice"] < 1.0 and "aji" in summary["aggregate"]
    rows = (tmp_path / "out" / "metrics_per_image.csv").read_text().splitlines()
    assert rows[0].startswith("image_id,dice") and len(rows) == 4


def test_unmatched_files_and_bad_maps_are_named(tmp_path):
    make_maps(tmp_path)
    (tmp_path / "pred" / "img1.npy").unlink()
    with pytest.raises(DataError, match=r"pred: no prediction for ground-truth maps \['img1'\]"):
        evaluate_main(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")])
    np.save(tmp_path / "pred" / "img1.npy", np.zeros((24, 24), np.float32))
    with pytest.raises(DataError, match=r"img1\.npy.*integer dtype"):
        evaluate_main(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")])
    np.save(tmp_path / "pred" / "img1.npy", np.zeros((20, 24), np.int32))
    with pytest.raises(
        DataError, match=r"img1: prediction is \(20, 24\) but ground truth is \(24, 24\)"
    ):
        evaluate_main(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")])
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--pred", str(tmp_path / "empty"), "--gt", str(tmp_path / "gt")]) == 2


def test_two_predictions_for_one_image_are_refused_naming_both(tmp_path):
    truths = make_maps(tmp_path)
    write_label_map(tmp_path / "pred" / "img1", truths["img1"][1])  # img1.png beside img1.npy
    with pytest.raises(DataError, match=r"pred: img1\.npy and img1\.png are both"):
        evaluate_main(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")])
