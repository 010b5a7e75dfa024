"""Augmentation moves image and label map together and never invents or blends ids."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from histo_gan.data.augment import HistoAugment
from histo_gan.data.sources import BundledSample


def coded_pair(size=64, seed=0):
    """A label map with ~30 nuclei and an image whose RGB encodes each pixel's id exactly."""
    rng = np.random.default_rng(seed)
    label = np.zeros((size, size), dtype=np.int32)
    for k in range(1, 31):
        y, x = rng.integers(0, size - 8, 2)
        label[y : y + rng.integers(3, 8), x : x + rng.integers(3, 8)] = 1000 + 37 * k
    image = np.stack([label % 256, label // 256, np.full_like(label, 7)], axis=2).astype(np.uint8)
    return image, label


def decode(image):
    return image[..., 0].astype(np.int32) + 256 * image[..., 1].astype(np.int32)


SPATIAL_ONLY = dict(hed_p=0.0, color_p=0.0, elastic_interpolation=cv2.INTER_NEAREST)


@pytest.mark.parametrize("seed", range(6))
def test_spatial_transforms_keep_image_and_label_aligned_pixel_by_pixel(seed):
    image, label = coded_pair(seed=seed)
    augment = HistoAugment(flip_p=0.5, rot90_p=1.0, elastic_p=1.0, **SPATIAL_ONLY)
    out_image, out_label = augment(image, label, seed=seed)
    assert out_image.shape == image.shape and out_label.shape == label.shape
    assert out_label.dtype == np.int32
    filled = out_image[..., 2] == 7  # pixels pulled in from outside are 0 in both
    assert np.array_equal(decode(out_image)[filled], out_label[filled])
    assert np.all(out_label[~filled] == 0)
    assert not np.array_equal(out_label, label), "the transform should have moved something"


def test_ids_are_never_blended_or_invented():
    image, label = coded_pair(seed=3)
    augment = HistoAugment(elastic_p=1.0)
    for seed in range(5):
        _, out_label = augment(image, label, seed)
        assert set(np.unique(out_label)) <= set(np.unique(label))


def test_flips_and_rotations_keep_every_id_and_its_area():
    image, label = coded_pair(seed=4)
    augment = HistoAugment(flip_p=0.5, rot90_p=1.0, elastic_p=0.0, **SPATIAL_ONLY)
    _, out_label = augment(image, label, seed=11)
    before = dict(zip(*np.unique(label, return_counts=True)))
    after = dict(zip(*np.unique(out_label, return_counts=True)))
    assert before == after


def test_same_seed_same_result_and_colour_only_changes_the_image():
    item = BundledSample().load(0)
    image, label = item.image[:64, :64], item.label[:64, :64]
    augment = HistoAugment(flip_p=0.0, rot90_p=0.0, elastic_p=0.0, hed_p=1.0, color_p=1.0)
    a = augment(image, label, seed=5)
    b = augment(image, label, seed=5)
    c = augment(image, label, seed=6)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    assert np.array_equal(a[1], label)
    assert not np.array_equal(a[0], image)
