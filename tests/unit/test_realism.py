"""Realism measures on synthetic arrays: patches, the classifier two-sample test, stain distances."""

from __future__ import annotations

import numpy as np
import pytest

from histo_gan.realism import (
    classifier_two_sample_test,
    random_patches,
    stain_distance,
    stain_features,
)


def tissue(rng, n, hue=(180, 120, 190)):
    """Pinkish noise images ``(n, 48, 48, 3)`` with dark purple blobs."""
    images = np.clip(rng.normal(hue, 12, size=(n, 48, 48, 3)), 0, 255).astype(np.uint8)
    for image in images:
        y, x = rng.integers(8, 40, size=2)
        image[y - 4 : y + 4, x - 4 : x + 4] = (90, 40, 130)
    return images


def test_random_patches_spread_over_images_and_refuse_small_images():
    rng = np.random.default_rng(0)
    images = [np.full((40, 50, 3), k, np.uint8) for k in range(3)]
    patches, groups = random_patches(images, 16, 7, rng)
    assert patches.shape == (7, 16, 16, 3) and patches.dtype == np.uint8
    assert groups.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert all((patches[k] == groups[k]).all() for k in range(7))
    with pytest.raises(ValueError, match="smaller than the patch size"):
        random_patches(images, 41, 2, rng)


def test_stain_distance_is_zero_for_one_set_and_grows_with_a_stain_shift():
    rng = np.random.default_rng(0)
    real = tissue(rng, 40)
    same = stain_distance(real, real)
    assert same["w1_h"] == pytest.approx(0, abs=1e-9) and same["frechet"] == pytest.approx(
        0, abs=1e-9
    )
    paler = np.clip(real.astype(int) + 30, 0, 255).astype(np.uint8)  # less stain: lower OD
    moved = stain_distance(real, paler)
    assert moved["w1_h"] > 0.005 and moved["w1_e"] > 0.001 and moved["frechet"] > 1e-5
    assert moved["synthetic_features"]["mean_h"] < moved["real_features"]["mean_h"]
    assert stain_features(real).shape == (40, 4)


def test_c2st_separates_different_tissue_and_not_identical_tissue():
    rng = np.random.default_rng(1)
    real, bluish = tissue(rng, 160), tissue(rng, 160, hue=(150, 130, 220))
    groups = np.arange(160) // 8  # 20 "images" of 8 patches
    kwargs = {"seed": 0, "repeats": 1, "epochs": 10, "batch_size": 16}
    clear = classifier_two_sample_test(real, bluish, groups, groups, **kwargs)
    assert clear["accuracy"] > 0.9 and clear["ci_low"] > 0.8
    assert clear["n_real_images"] == clear["n_synthetic_images"] == 20
    assert len(clear["real_image_accuracy"]) == 20 and len(clear["repeat_accuracies"]) == 1
    null = classifier_two_sample_test(real, tissue(rng, 160), groups, groups, **kwargs)
    assert 0.3 < null["accuracy"] < 0.7 and null["ci_low"] < 0.5 < null["ci_high"]
    assert classifier_two_sample_test(real, bluish, groups, groups, **kwargs) == clear
    with pytest.raises(ValueError, match="two images"):
        classifier_two_sample_test(real, bluish, np.zeros(160), groups, **kwargs)
