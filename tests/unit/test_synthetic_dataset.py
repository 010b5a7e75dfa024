"""The synthetic-dataset format: round trip, atomic writes, repair after a crash, weights."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from histo_gan.data.readers import DataError
from histo_gan.data.sources import SyntheticFolder
from histo_gan.data.synthetic import (
    DatasetLocked,
    DatasetMismatch,
    SyntheticDataset,
    SyntheticDatasetWriter,
    update_weights,
)


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
    with pytest.raises(DataError, match=r"labels/a\.png is listed but missing"):
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


def test_reopening_with_other_metadata_refuses_naming_the_differences(tmp_path):
    root = tmp_path / "ds"
    with SyntheticDatasetWriter(root, {"n": 2, "size": 16, "seed": 0}) as writer:
        writer.add("a", *sample(0))
    with pytest.raises(DatasetMismatch, match=r"n: 2 -> 3.*seed: 0 -> 1.*size: 16 -> 24") as info:
        SyntheticDatasetWriter(root, {"n": 3, "size": 24, "seed": 1}).__enter__()
    assert info.value.differences == {"n": (2, 3), "seed": (0, 1), "size": (16, 24)}
    assert json.loads((root / "dataset.json").read_text())["size"] == 16  # untouched
    # the same metadata resumes; a larger n is accepted only where the caller allows it to grow
    with SyntheticDatasetWriter(root, {"n": 2, "size": 16, "seed": 0}) as writer:
        assert writer.completed_ids == {"a"}
    with pytest.raises(DatasetMismatch, match=r"n: 2 -> 1"):
        SyntheticDatasetWriter(root, {"n": 1, "size": 16, "seed": 0}, grow=("n",)).__enter__()
    with SyntheticDatasetWriter(root, {"n": 3, "size": 16, "seed": 0}, grow=("n",)) as writer:
        assert writer.completed_ids == {"a"}
    assert json.loads((root / "dataset.json").read_text())["n"] == 3
    with SyntheticDatasetWriter(root, {"n": 1, "size": 24, "seed": 1}, overwrite=True) as writer:
        assert writer.completed_ids == set()
        writer.add("b", *sample(1, size=24))
    dataset = SyntheticDataset(root)
    assert [e["id"] for e in dataset.manifest] == ["b"] and dataset.header["size"] == 24
    assert sorted(p.name for p in (root / "images").iterdir()) == ["b.png"]


def test_a_folder_that_is_not_a_dataset_is_never_cleaned(tmp_path):
    root = tmp_path / "mine"
    (root / "images").mkdir(parents=True)
    (root / "images" / "precious.png").write_bytes(b"not ours")
    for overwrite in (False, True):
        with pytest.raises(DataError, match=r"mine: not a histo-gan synthetic dataset.*images"):
            SyntheticDatasetWriter(root, overwrite=overwrite).__enter__()
    assert (root / "images" / "precious.png").exists()
    assert not (root / ".lock").exists()


HOLD = """
import sys, time
from histo_gan.data.synthetic import SyntheticDatasetWriter
writer = SyntheticDatasetWriter(sys.argv[1]).__enter__()
print("holding", flush=True)
time.sleep(60)
"""


def hold_lock(root: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    root = tmp_path / "ds"
    holder = hold_lock(root)
    try:
        pattern = (
            rf"ds: another writer holds the dataset \(pid {holder.pid} on {socket.gethostname()}"
        )
        with pytest.raises(DatasetLocked, match=pattern):
            SyntheticDatasetWriter(root).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with SyntheticDatasetWriter(root) as writer:  # in one process, too
        with pytest.raises(DatasetLocked, match=rf"pid {os.getpid()}"):
            SyntheticDatasetWriter(root).__enter__()
        writer.add("a", *sample(0))
    assert not (root / ".lock").exists()


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path):
    root = tmp_path / "ds"
    holder = hold_lock(root)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((root / ".lock").read_text())["pid"] == holder.pid  # left behind
    with SyntheticDatasetWriter(root) as writer:
        assert writer.previous_holder["pid"] == holder.pid
        assert json.loads((root / ".lock").read_text())["pid"] == os.getpid()
    assert not (root / ".lock").exists()


def damage(root: Path) -> None:
    """What two writers racing on one folder leave behind."""
    lines = (root / "manifest.jsonl").read_text().splitlines()
    lines.insert(2, lines[1])  # b twice
    lines.insert(3, '{"id": "x", "ima')  # a torn line in the middle
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (root / "labels" / "c.png").unlink()  # deleted by the other writer's clean-up
    (root / "images" / "orphan.png").write_bytes(b"unlisted")


def test_damaged_datasets_get_a_clear_error_or_are_repaired(tmp_path):
    root = tmp_path / "ds"
    with SyntheticDatasetWriter(root) as writer:
        for k, name in enumerate("abcd"):
            writer.add(name, *sample(k))
    damage(root)
    with pytest.raises(DataError, match=r"ds: damaged synthetic dataset") as info:
        SyntheticFolder(root)
    message = str(info.value)
    assert "sample 'b' is listed 2 times" in message
    assert "line 4 is not valid JSON" in message
    assert "labels/c.png is listed but missing" in message
    assert "repair=True" in message
    repaired = SyntheticFolder(root, repair=True)
    assert repaired.image_ids == ["a", "d"]  # ambiguous and incomplete samples are removed
    assert np.array_equal(repaired.load(1).image, sample(3)[0])
    assert sorted(p.name for p in (root / "images").iterdir()) == ["a.png", "d.png"]
    assert SyntheticFolder(root).image_ids == ["a", "d"]  # repaired for good


def test_an_unwritable_folder_is_one_clear_error(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(DataError, match=r"ds: cannot write the dataset here \(Permission denied"):
        SyntheticDatasetWriter(tmp_path / "ds").__enter__()


def test_the_fingerprint_follows_the_samples_not_the_folder(tmp_path):
    def write(root, change=None):
        with SyntheticDatasetWriter(root, {"method": "test"}) as writer:
            for k in range(3):
                image, label = sample(k)
                if change == "pixel" and k == 1:
                    image[0, 0, 0] ^= 1
                weight = 0.7 if change == "weight" and k == 2 else 1.0
                writer.add(f"s{k}", image, label, {"seed": 5}, weight=weight)
        return SyntheticDataset(root).fingerprint()

    same = write(tmp_path / "a")
    assert len(same) == 16 and int(same, 16) >= 0
    assert write(tmp_path / "b") == same  # another folder, the same samples
    assert write(tmp_path / "c", "pixel") != same  # one bit of one image
    assert write(tmp_path / "d", "weight") != same  # one importance weight


def test_a_fits_summary_names_the_synthetic_export_it_mixed_in(tmp_path):
    from types import SimpleNamespace

    from histo_gan.cli import _synthetic_set_of

    with SyntheticDatasetWriter(tmp_path / "ds", {"method": "test"}) as writer:
        writer.add("s0", *sample(0))
    source = SyntheticFolder(tmp_path / "ds")
    mixed = SimpleNamespace(datamodule=SimpleNamespace(synthetic=source, synthetic_ratio=0.5))
    unused = SimpleNamespace(datamodule=SimpleNamespace(synthetic=source, synthetic_ratio=0.0))
    assert _synthetic_set_of(mixed) == {
        "synthetic_root": str(tmp_path / "ds"),
        "synthetic_fingerprint": source.dataset.fingerprint(),
    }
    assert _synthetic_set_of(unused) == {} and _synthetic_set_of(SimpleNamespace()) == {}
