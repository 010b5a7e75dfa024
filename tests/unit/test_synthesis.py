"""Initial synthesis on real MoNuSeg crops (the bundled sample): segmentations, backgrounds, masks, samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from histo_gan.data.sources import BundledSample, bundled_sample_dir
from histo_gan.synthesis import (
    CentroidMapGenerator,
    CentroidSynthesis,
    InitialSynthesis,
    NucleusShapeDictionary,
    OtsuThreshold,
    PercentileThreshold,
    RandomPolygonMasks,
    TeleaInpainter,
    legacy_hed,
)
from histo_gan.synthesis.stain import SUB_SEGMENTATION_PERCENT


@pytest.fixture(scope="module")
def crops():
    source = BundledSample()
    return [source.load(i) for i in range(len(source))]


def dark_pixels(h, reference_h, percent=10):
    """Pixels whose H exceeds the top-``percent`` level of ``reference_h`` (the darkest nuclei)."""
    return h > np.percentile(reference_h, 100 - percent)


def test_legacy_hed_matches_the_papers_units(crops):
    for item in crops:
        mean_h = legacy_hed(item.image)[..., 0].mean()
        assert -1.35 < mean_h < -1.0  # the range of the paper's tables
        # annotated nuclei are H-darker than the rest of the crop
        h = legacy_hed(item.image)[..., 0]
        assert h[item.label > 0].mean() > h[item.label == 0].mean()


def test_super_segmentation_covers_more_dark_pixels_than_sub_segmentation(crops):
    sup, sub = (
        PercentileThreshold(dilation=2),
        PercentileThreshold(SUB_SEGMENTATION_PERCENT, dilation=0),
    )
    for item in crops:
        h = legacy_hed(item.image)[..., 0]
        super_mask, sub_mask = sup(h), sub(h)
        # H-dark pixels: the annotated nuclei, and the darkest 25% of the crop
        for dark in (item.label > 0, dark_pixels(h, h, percent=25)):
            assert (dark & super_mask).sum() > (dark & sub_mask).sum()
        assert super_mask.mean() > sub_mask.mean()
        assert (sub_mask & ~super_mask).sum() <= 0.01 * sub_mask.sum()  # sub inside super
        # super-segmentation contains most annotated nucleus pixels
        assert (super_mask & (item.label > 0)).sum() > 0.5 * (item.label > 0).sum()


def test_otsu_variant_segments_nuclei(crops):
    h = legacy_hed(crops[0].image)[..., 0]
    mask = OtsuThreshold()(h)
    label = crops[0].label > 0
    assert 0.05 < mask.mean() < 0.6
    assert (mask & label).sum() / label.sum() > 0.5


def test_inpainted_background_has_fewer_dark_pixels(crops):
    for item in crops:
        h = legacy_hed(item.image)[..., 0]
        nuclear = PercentileThreshold(dilation=2)(h)
        background = TeleaInpainter()(item.image, nuclear)
        bg_h = legacy_hed(background)[..., 0]
        assert dark_pixels(bg_h, h).sum() < 0.25 * dark_pixels(h, h).sum()
        assert np.array_equal(background[~nuclear], item.image[~nuclear])  # tissue untouched


def assert_exact_instances(label, min_area):
    ids = np.unique(label)[1:]
    assert label.dtype == np.int32
    assert ids.tolist() == list(range(1, len(ids) + 1))  # every id 1..N present
    for index, box in enumerate(ndimage.find_objects(label), start=1):
        part = label[box] == index
        assert part.sum() >= min_area
        assert ndimage.label(part)[1] == 1  # one connected piece


def test_random_polygon_masks(crops):
    generator = RandomPolygonMasks(density=(0.2, 0.2))
    label = generator(np.random.default_rng(0), 128)
    assert_exact_instances(label, generator.min_area)
    assert 4 <= label.max() <= 40  # about 0.2 * 128^2 / 500 px per nucleus
    assert 0.08 < (label > 0).mean() < 0.35
    assert not np.array_equal(label, generator(np.random.default_rng(1), 128))
    assert np.array_equal(label, generator(np.random.default_rng(0), 128))


def test_nucleus_shape_dictionary_uses_real_shapes(crops):
    generator = NucleusShapeDictionary(bundled_sample_dir() / "labels", max_overlap=0.0)
    assert len(generator.shapes) > 50
    label = generator(np.random.default_rng(0), 128)
    assert_exact_instances(label, generator.min_area)
    real_areas = [s.sum() for s in generator.shapes]
    areas = np.bincount(label.ravel())[1:]
    assert np.median(areas) == pytest.approx(np.median(real_areas), rel=0.6)


def test_centroid_maps_mark_every_nucleus():
    generator = CentroidMapGenerator(bundled_sample_dir() / "labels")
    synthesis = CentroidSynthesis(generator, size=128, seed=3)
    point_map, label, meta = synthesis.sample(0)
    assert_exact_instances(label, generator.min_area)
    assert meta["source_ids"] and all(s.startswith("TCGA-") for s in meta["source_ids"])
    centres = ndimage.center_of_mass(np.ones_like(label), label, np.arange(1, label.max() + 1))
    for cy, cx in centres:
        assert point_map[int(round(cy)), int(round(cx))].tolist() == [255, 255, 255]
    assert (point_map[..., 0] > 0).mean() < 0.1


@pytest.fixture(scope="module")
def synthesis(crops):
    return InitialSynthesis(crops, RandomPolygonMasks(), size=96, seed=7)


def test_sample_label_map_matches_the_nuclei_drawn(synthesis):
    image, label, meta = synthesis.sample(5)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert_exact_instances(label, 20)
    assert meta["seed"] == 7 and meta["index"] == 5 and len(meta["source_ids"]) == 2
    ids = [item.image_id for item in synthesis.images]
    tile = synthesis.tile(ids.index(meta["source_ids"][0]))
    y, x = meta["crop"]
    background = tile.background[y : y + 96, x : x + 96]
    # Far from every nucleus the patch is the background, untouched ("no id outside the mask").
    far = ~ndimage.binary_dilation(label > 0, iterations=6)
    assert np.abs(image[far].astype(int) - background[far].astype(int)).max() <= 1
    # Every nucleus is drawn: darker in H than the background it covers.
    h, bg_h = legacy_hed(image)[..., 0], legacy_hed(background)[..., 0]
    for index in range(1, label.max() + 1):
        inside = ndimage.binary_erosion(label == index, iterations=1)
        if inside.sum() >= 5:
            assert h[inside].mean() > bg_h[inside].mean(), index


def test_same_seed_is_byte_identical_and_seeds_differ(crops, synthesis):
    again = InitialSynthesis(crops, RandomPolygonMasks(), size=96, seed=7)
    a, b = synthesis.sample(3), again.sample(3)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    other = InitialSynthesis(crops, RandomPolygonMasks(), size=96, seed=8).sample(3)
    assert a[0].tobytes() != other[0].tobytes()
    assert synthesis.sample(4)[0].tobytes() != a[0].tobytes()


def test_patch_larger_than_the_tiles_is_an_error(crops):
    with pytest.raises(
        ValueError, match=r"source tile is 256x256, smaller than the patch size 300"
    ):
        InitialSynthesis(crops, RandomPolygonMasks(), size=300)
