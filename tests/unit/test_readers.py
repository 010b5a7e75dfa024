"""Readers: conventions on small files, and a clear error naming the file for bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.io
import tifffile

from histo_gan import readers
from histo_gan.data import readers as data_readers
from histo_gan.data.sources import ConsepFolder, ImageFolder, LabelMapFolder
from histo_gan.readers import (
    DataError,
    rasterize_polygons,
    read_aperio_xml,
    read_consep_mat,
    read_image,
    read_label_map,
)

XML_TEMPLATE = """<Annotations MicronsPerPixel="0.25"><Annotation Id="1"><Regions>{}</Regions>
</Annotation></Annotations>"""


def region(*vertices):
    body = "".join(f'<Vertex X="{x}" Y="{y}"/>' for x, y in vertices)
    return f'<Region Id="1"><Vertices>{body}</Vertices></Region>'


def write_png(path, array):
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), array)
    return path


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)


def test_png_round_trip_keeps_rgb_order(tmp_path, rgb):
    assert np.array_equal(read_image(write_png(tmp_path / "a.png", rgb)), rgb)


def test_lzw_tiff_reads(tmp_path, rgb):
    tifffile.imwrite(tmp_path / "a.tif", rgb, compression="lzw")
    assert np.array_equal(read_image(tmp_path / "a.tif"), rgb)


def test_label_map_formats_agree(tmp_path):
    label = np.zeros((8, 9), dtype=np.uint16)
    label[1:3, 2:5], label[5:7, 6:8] = 7, 300
    write_png(tmp_path / "l.png", label)
    tifffile.imwrite(tmp_path / "l.tif", label.astype(np.int32))
    np.save(tmp_path / "l.npy", label.astype(np.int64))
    scipy.io.savemat(tmp_path / "l.mat", {"inst_map": label.astype(np.int32)})
    for suffix in ("png", "tif", "npy", "mat"):
        loaded = read_label_map(tmp_path / f"l.{suffix}")
        assert loaded.dtype == np.int32 and np.array_equal(loaded, label), suffix


def test_truncated_tiff_names_the_file(tmp_path, rgb):
    tifffile.imwrite(tmp_path / "t.tif", rgb, compression="lzw")
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"t\.tif"):
        read_image(tmp_path / "t.tif")


def test_non_image_file_and_missing_file(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match=r"notes\.png.*decode"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(DataError, match=r"missing\.png: file does not exist"):
        read_image(tmp_path / "missing.png")


def test_float_and_negative_and_rgb_label_maps_are_rejected(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(DataError, match=r"f\.npy.*integer dtype.*float32"):
        read_label_map(tmp_path / "f.npy")
    np.save(tmp_path / "n.npy", -np.ones((4, 4), dtype=np.int32))
    with pytest.raises(DataError, match=r"n\.npy.*negative"):
        read_label_map(tmp_path / "n.npy")
    write_png(tmp_path / "c.png", np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"c\.png.*3 channels"):
        read_label_map(tmp_path / "c.png")


def test_xml_with_no_regions_names_the_file(tmp_path):
    (tmp_path / "empty.xml").write_text(XML_TEMPLATE.format(""))
    with pytest.raises(DataError, match=r"empty\.xml.*no annotated regions"):
        read_aperio_xml(tmp_path / "empty.xml")
    (tmp_path / "broken.xml").write_text("<Annotations><Region>")
    with pytest.raises(DataError, match=r"broken\.xml.*not a valid XML"):
        read_aperio_xml(tmp_path / "broken.xml")


def test_xml_degenerate_regions_warn_with_count(tmp_path):
    square = region((1, 1), (5, 1), (5, 5), (1, 5))
    text = XML_TEMPLATE.format(square + region((0, 0), (3, 3)) + region((2, 2)))
    (tmp_path / "a.xml").write_text(text)
    with pytest.warns(UserWarning, match=r"a\.xml: skipped 2 degenerate"):
        polygons = read_aperio_xml(tmp_path / "a.xml")
    assert len(polygons) == 1 and polygons[0].shape == (4, 2)


def test_rasterisation_fills_pixel_centres_and_later_polygons_win():
    # Square with corners (1,1)-(5,5) in corner coordinates covers pixels 1..4.
    square = np.array([[1, 1], [5, 1], [5, 5], [1, 5]], dtype=float)
    shifted = square + 2  # covers pixels 3..6, overlapping the first on 3..4
    label = rasterize_polygons([square, shifted], (8, 8))
    expected = np.zeros((8, 8), dtype=np.int32)
    expected[1:5, 1:5] = 1
    expected[3:7, 3:7] = 2
    assert np.array_equal(label, expected)


def test_mask_of_another_size_names_both_files(tmp_path, rgb):
    (tmp_path / "img").mkdir(), (tmp_path / "lab").mkdir()
    write_png(tmp_path / "img" / "x.png", rgb)
    write_png(tmp_path / "lab" / "x.png", np.zeros((10, 10), dtype=np.uint16))
    source = LabelMapFolder(tmp_path / "img", tmp_path / "lab")
    with pytest.raises(DataError, match=r"lab/x\.png.*10x10.*x\.png is 20x16"):
        source.load(0)


def test_empty_folder_and_unmatched_images_are_errors(tmp_path, rgb):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no images found"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(DataError, match=r"nowhere: images folder does not exist"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "img").mkdir(), (tmp_path / "lab").mkdir()
    write_png(tmp_path / "img" / "a.png", rgb)
    write_png(tmp_path / "img" / "b.png", rgb)
    write_png(tmp_path / "lab" / "a.png", np.zeros((16, 20), dtype=np.uint16))
    with pytest.raises(DataError, match=r"lab: no label map for 1 image.*b\.png"):
        LabelMapFolder(tmp_path / "img", tmp_path / "lab")


def test_consep_mat_with_type_merge(tmp_path, rgb):
    inst = np.zeros((16, 20), dtype=np.int32)
    types = np.zeros((16, 20), dtype=np.int32)
    for k, cls in enumerate([1, 2, 3, 4, 5, 6, 7], start=1):
        inst[2, 2 * k] = k
        types[2, 2 * k] = cls
    (tmp_path / "Images").mkdir(), (tmp_path / "Labels").mkdir()
    write_png(tmp_path / "Images" / "test_1.png", rgb)
    scipy.io.savemat(tmp_path / "Labels" / "test_1.mat", {"inst_map": inst, "type_map": types})
    raw = ConsepFolder(tmp_path / "Images", tmp_path / "Labels").load(0)
    assert np.array_equal(raw.label, inst) and np.array_equal(raw.type_map, types)
    merged = ConsepFolder(tmp_path / "Images", tmp_path / "Labels", merge_types=True).load(0)
    assert merged.type_map[2, 2:15:2].tolist() == [1, 2, 3, 3, 4, 4, 4]
    scipy.io.savemat(tmp_path / "bad.mat", {"type_map": types})
    with pytest.raises(DataError, match=r"bad\.mat.*no 'inst_map'"):
        read_consep_mat(tmp_path / "bad.mat")


def test_non_numeric_xml_vertex_names_the_file_and_region(tmp_path):
    square = region((1, 1), (5, 1), (5, 5), (1, 5))
    bad = '<Region Id="7"><Vertices><Vertex X="1" Y="1"/><Vertex X="4,5" Y="2"/>'
    bad += '<Vertex X="3" Y="3"/></Vertices></Region>'
    (tmp_path / "a.xml").write_text(XML_TEMPLATE.format(square + bad))
    with pytest.raises(DataError, match=r"a\.xml: region 2 \(Id 7\).*'4,5'"):
        read_aperio_xml(tmp_path / "a.xml")


def test_nan_vertices_drop_the_region_with_a_counting_warning(tmp_path):
    square = region((1, 1), (5, 1), (5, 5), (1, 5))
    nan = region((1, 1), ("nan", 1), (5, 5))
    inf = region((1, 1), (2, "inf"), (5, 5))
    (tmp_path / "a.xml").write_text(XML_TEMPLATE.format(square + nan + inf))
    with pytest.warns(UserWarning, match=r"a\.xml: skipped 2 region\(s\) with non-finite"):
        polygons = read_aperio_xml(tmp_path / "a.xml")
    assert len(polygons) == 1 and np.isfinite(polygons[0]).all()


def test_truncated_tiff_says_it_could_not_be_decoded(tmp_path, rgb):
    tifffile.imwrite(tmp_path / "t.tif", rgb, compression="lzw")
    data = (tmp_path / "t.tif").read_bytes()
    # cut after the header (what a cut MoNuSeg TIFF, whose directory is at the end, looks like)
    for cut in (8, len(data) // 3):
        (tmp_path / "t.tif").write_bytes(data[:cut])
        with pytest.raises(DataError, match=r"t\.tif: could not decode the file as an image"):
            read_image(tmp_path / "t.tif")


def test_same_stem_with_two_suffixes_names_both_files(tmp_path, rgb):
    (tmp_path / "img").mkdir(), (tmp_path / "lab").mkdir()
    write_png(tmp_path / "img" / "x.png", rgb)
    tifffile.imwrite(tmp_path / "img" / "x.tif", rgb)
    write_png(tmp_path / "lab" / "x.png", np.zeros((16, 20), dtype=np.uint16))
    with pytest.raises(DataError, match=r"img: x\.png and x\.tif have the same name"):
        ImageFolder(tmp_path / "img")
    with pytest.raises(DataError, match=r"x\.png and x\.tif have the same name"):
        LabelMapFolder(tmp_path / "img", tmp_path / "lab")


def test_the_data_layer_name_of_the_readers_is_the_same_objects():
    assert data_readers.__all__
    for name in data_readers.__all__:
        assert getattr(data_readers, name) is getattr(readers, name), name
    assert set(readers.__all__) <= set(data_readers.__all__)
