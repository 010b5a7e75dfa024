"""Every MoNuSeg training file in ../shared/data reads with the documented shapes and counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from histo_gan.data.readers import rasterize_polygons, read_aperio_xml, read_image, read_label_map
from histo_gan.data.sources import LabelMapFolder, MoNuSegXMLFolder

pytestmark = pytest.mark.real_data

TOTAL_NUCLEI_IN_LABEL_MAPS = 16_958  # stated in ../shared/data/README.md


def test_all_images_and_label_maps(shared_data):
    images = sorted((shared_data / "images").glob("*.tif"))
    masks = sorted((shared_data / "instance_masks").glob("*.png"))
    assert len(images) == 30 and len(masks) == 30
    total = 0
    for image_path, mask_path in zip(images, masks):
        assert image_path.stem == mask_path.stem
        image = read_image(image_path)
        label = read_label_map(mask_path)
        assert image.shape == (1000, 1000, 3) and image.dtype == np.uint8
        assert label.shape == (1000, 1000) and label.dtype == np.int32
        assert 10 < image.mean() < 245, f"{image_path.name} decodes to a blank image"
        ids = np.unique(label)
        assert ids[0] == 0
        total += len(ids) - 1
    assert total == TOTAL_NUCLEI_IN_LABEL_MAPS


def test_xml_rasterisation_agrees_with_label_maps(shared_data):
    xml_files = sorted((shared_data / "annotations").glob("*.xml"))
    assert len(xml_files) == 13
    for xml_path in xml_files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            polygons = read_aperio_xml(xml_path)
        reference = read_label_map(shared_data / "instance_masks" / f"{xml_path.stem}.png")
        label = rasterize_polygons(polygons, reference.shape)
        ours, theirs = label > 0, reference > 0
        iou = (ours & theirs).sum() / (ours | theirs).sum()
        assert iou >= 0.85, f"{xml_path.name}: foreground IoU {iou:.3f} with the label map"
        # Every polygon that keeps pixels becomes one instance.
        assert len(np.unique(label)) - 1 >= 0.98 * len(polygons)


def test_degenerate_regions_are_counted_in_a_warning(shared_data):
    counts = {}
    for xml_path in sorted((shared_data / "annotations").glob("*.xml")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read_aperio_xml(xml_path)
        messages = [str(w.message) for w in caught]
        for message in messages:
            assert str(xml_path) in message and "degenerate" in message
        counts[xml_path.name] = messages
    assert any(counts.values()), "the README says some regions have 2 vertices"


def test_sources_list_and_load_real_files(shared_data):
    xml_source = MoNuSegXMLFolder(shared_data / "images", shared_data / "annotations")
    assert len(xml_source) == 13
    assert xml_source.organs[xml_source.image_ids.index("TCGA-NH-A8F7-01A-01-TS1")] == "colon"
    masks = LabelMapFolder(shared_data / "images", shared_data / "instance_masks")
    assert len(masks) == 30
    organs = masks.organs
    assert organs.count("breast") == 6 and organs.count("stomach") == 2
    assert "unknown" not in organs
    item = xml_source.load(0)
    assert item.label.max() > 100 and item.organ != "unknown"
