"""The synthetic-dataset format: round trip, atomic writes, repair after a crash, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from histo_gan.data.readers import DataError
from histo_gan.data.sources import SyntheticFolder
from histo_gan.data.synthetic import SyntheticDataset, SyntheticDatasetWriter, update_weights


def sample(k, size=16):
    rng = np.random.default_rng(k)
    label = np.zeros((size, size), np.int32)
    label[2:6, 2:6], label[8:12, 9:14] = 1, 2
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8), label


def test_round_trip_with_metadata_weights_and_large_ids(tmp_path):
    with SyntheticDatasetWriter(tmp_path / "ds", {"method": "test"}) as writer:
        for k in range(3):
            image, label = sample(k)
            if k == 2:
                label = label * 70_000  # ids >= 2**16 go to a 32-bit TIFF
            writer.add(
                f"s{k}",
                image,
                label,
                {"seed": 5, "source_ids": ["a"], "organ": "liver"},
                weight=0.5 + k,
            )
    dataset = SyntheticDataset(tmp_path / "ds")
    assert len(dataset) == 3 and dataset.header["method"] == "test"
    for k, item in enumerate(dataset):
        image, label = sample(k)
        assert np.array_equal(item.image, image)
        assert np.array_equal(item.label, label * (70_000 if k == 2 else 1))
        assert item.is_synthetic and item.weight == 0.5 + k and item.organ == "liver"
        assert item.meta == {"seed": 5, "source_ids": ["a"]}
    assert dataset.manifest[2]["label"].endswith(".tif")
    source = SyntheticFolder(tmp_path / "ds")
    assert source.image_ids == ["s0", "s1", "s2"] and source.organs == ["liver"] * 3


def test_torn_manifest_line_and_orphan_files_are_repaired_on_resume(tmp_path):
    root = tmp_path / "ds"
    with SyntheticDatasetWriter(root) as writer:
        writer.add("a", *sample(0))
        writer.add("b", *sample(1))
    # simulate a crash: half a manifest line, an orphan image and a temporary file
    with open(root / "manifest.jsonl", "a") as f:
        f.write('{"id": "c", "image": "images/c.pn')
    (root / "images" / "c.png").write_bytes(b"partial")
    (root / "labels" / ".tmp-123").write_bytes(b"partial")
    # a reader sees only the complete samples
    assert [e["id"] for e in SyntheticDataset(root).manifest] == ["a", "b"]
    with SyntheticDatasetWriter(root) as writer:
        assert writer.completed_ids == {"a", "b"}
        writer.add("c", *sample(2))
    assert not (root / "labels" / ".tmp-123").exists()
    dataset = SyntheticDataset(root)
    assert [e["id"] for e in dataset.manifest] == ["a", "b", "c"]
    assert np.array_equal(dataset[2].image, sample(2)[0])


def test_bad_datasets_are_named(tmp_path):
    with pytest.raises(DataError, match="nowhere: synthetic dataset folder does not exist"):
        SyntheticDataset(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match=r"dataset\.json: missing"):
        SyntheticDataset(tmp_path / "plain")
    root = tmp_path / "ds"
    with SyntheticDatasetWriter(root) as writer:
        writer.add("a", *sample(0))
        with pytest.raises(DataError, match="'a' is already in the dataset"):
            writer.add("a", *sample(0))
        with pytest.raises(ValueError, match="label .* and image .* differ"):
            writer.add("b", sample(0)[0], np.zeros((3, 3), np.int32))
    (root / "labels" / "a.png").unlink()
    with pytest.raises(DataError, match=r"labels/a\.png: listed in the manifest but missing"):
        SyntheticDataset(root)
    lines = (root / "manifest.jsonl").read_text()
    (root / "manifest.jsonl").write_text("{broken\n" + lines)
    with pytest.raises(DataError, match=r"manifest\.jsonl: line 1 is not valid JSON"):
        SyntheticDataset(root)


def test_update_weights_is_atomic_and_checks_ids(tmp_path):
    root = tmp_path / "ds"
    with SyntheticDatasetWriter(root) as writer:
        for k in range(3):
            writer.add(f"s{k}", *sample(k))
    update_weights(root, {"s1": 1.7})
    assert [SyntheticDataset(root)[k].weight for k in range(3)] == [1.0, 1.7, 1.0]
    with pytest.raises(DataError, match="no samples with ids"):
        update_weights(root, {"zzz": 2.0})
    assert json.loads((root / "manifest.jsonl").read_text().splitlines()[1])["weight"] == 1.7
