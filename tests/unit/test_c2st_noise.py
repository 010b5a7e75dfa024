"""experiments/protocols/converged/c2st_noise.py: the two-sample test's noise on fixed crops."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from histo_gan.realism import classifier_two_sample_test

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "c2st_noise", REPO / "experiments" / "protocols" / "converged" / "c2st_noise.py"
)
c2st_noise = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(c2st_noise)


def test_crops_are_fixed_round_robin_and_refuse_small_images():
    images = [np.full((40, 50, 3), k, np.uint8) for k in range(3)]
    crops = c2st_noise.fixed_crops(images, 7, 32)
    assert crops.shape == (7, 32, 32, 3) and crops.dtype == np.uint8
    assert [int(c[0, 0, 0]) for c in crops] == [0, 1, 2, 0, 1, 2, 0]
    assert np.array_equal(crops, c2st_noise.fixed_crops(images, 7, 32))
    with pytest.raises(ValueError, match="image 0 is smaller than 48 px"):
        c2st_noise.fixed_crops(images, 2, 48)


def test_the_sd_is_that_of_the_tests_own_accuracies_per_seed(tmp_path):
    rng = np.random.default_rng(0)
    for side, shift in (("real", 0), ("synthetic", 40)):
        (tmp_path / side).mkdir()
        for k in range(3):
            image = rng.integers(0, 200, (40, 40, 3)) + shift
            tifffile.imwrite(tmp_path / side / f"{k}.tif", image.astype(np.uint8))
    out = tmp_path / "noise.json"
    c2st_noise.main(
        ["--real", str(tmp_path / "real"), "--synthetic", str(tmp_path / "synthetic"),
         "--crops", "12", "--patch-size", "32", "--seeds", "2", "--out", str(out)]
    )  # fmt: skip
    record = json.loads(out.read_text())
    real = c2st_noise.fixed_crops(c2st_noise.load_images(tmp_path / "real"), 12, 32)
    synthetic = c2st_noise.fixed_crops(c2st_noise.load_images(tmp_path / "synthetic"), 12, 32)
    direct = [classifier_two_sample_test(real, synthetic, seed=s, repeats=1)["accuracy"]
              for s in (0, 1)]  # fmt: skip
    assert record["accuracies"] == direct
    assert abs(record["sd"] - abs(direct[0] - direct[1]) / np.sqrt(2)) < 1e-12
    with pytest.raises(ValueError, match="at least 2 seeds"):
        c2st_noise.measure(real, synthetic, seeds=1, repeats=1)
