"""``histo-gan synthesize``: determinism across workers, resume after a kill, bad input."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from histo_gan.cli import main
from histo_gan.data.readers import DataError
from histo_gan.data.sources import bundled_sample_dir
from histo_gan.data.synthetic import SyntheticDataset
from histo_gan.synthesis.cli import main as synthesize

SOURCE = bundled_sample_dir() / "images"
REPO = Path(__file__).resolve().parents[2]


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(out, *extra, n=8, method="hou", size=64, seed=3):
    return main(
        [
            "synthesize",
            "--source",
            str(SOURCE),
            "--out",
            str(out),
            "--n",
            str(n),
            "--size",
            str(size),
            "--method",
            method,
            "--seed",
            str(seed),
            *extra,
        ]
    )


def test_same_seed_same_bytes_for_any_worker_count(tmp_path):
    assert run(tmp_path / "one", "--workers", "1") == 0
    assert run(tmp_path / "two", "--workers", "2") == 0
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
    assert run(tmp_path / "other", "--seed", "4") == 0
    assert (
        digest(tmp_path / "one")["images/000000.png"]
        != digest(tmp_path / "other")["images/000000.png"]
    )
    dataset = SyntheticDataset(tmp_path / "one")
    assert len(dataset) == 8 and dataset[0].meta["method"] == "hou"
    assert (tmp_path / "one" / "sample_grid.png").stat().st_size > 10_000


@pytest.mark.parametrize("method", ["mahmood", "centroids"])
def test_methods_that_need_real_masks(tmp_path, method):
    # the bundled sample keeps its label maps in labels/ beside images/: found without --masks
    assert run(tmp_path / method, n=3, method=method) == 0
    item = SyntheticDataset(tmp_path / method)[0]
    assert item.label.max() > 0 and item.image.shape == (64, 64, 3)


def test_killed_export_resumes_without_duplicates_or_corrupt_files(tmp_path):
    reference = tmp_path / "reference"
    assert run(reference, n=60) == 0
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "histo_gan.cli",
        "synthesize",
        "--source",
        str(SOURCE),
        "--out",
        str(out),
        "--n",
        "60",
        "--size",
        "64",
        "--seed",
        "3",
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    manifest = out / "manifest.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if manifest.exists() and manifest.read_text().count("\n") >= 10:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = manifest.read_text().count("\n")
    assert 10 <= written < 60, "the export must have been killed half-way"
    assert run(out, n=60) == 0
    ids = [e["id"] for e in SyntheticDataset(out).manifest]
    assert ids == [f"{i:06d}" for i in range(60)]
    assert not [p for p in out.rglob(".tmp-*")]
    assert digest(out) == digest(reference)  # identical to an uninterrupted run
    for item in SyntheticDataset(out):  # every file decodes
        assert item.image.shape == (64, 64, 3)


def test_bad_input_gives_a_clear_error_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images found"):
        synthesize(["--source", str(tmp_path / "empty"), "--out", str(out), "--n", "4"])
    broken = tmp_path / "broken"
    shutil.copytree(SOURCE, broken)
    (broken / "notes.png").write_text("this is not an image")
    with pytest.raises(DataError, match=r"notes\.png.*decode"):
        synthesize(["--source", str(broken), "--out", str(out), "--n", "4"])
    with pytest.raises(ValueError, match="--n must be a positive number"):
        synthesize(["--source", str(SOURCE), "--out", str(out), "--n", "0"])
    with pytest.raises(ValueError, match="smaller than the patch size 512"):
        synthesize(["--source", str(SOURCE), "--out", str(out), "--n", "4", "--size", "512"])
    assert not out.exists()
    assert (
        main(["synthesize", "--source", str(tmp_path / "empty"), "--out", str(out), "--n", "4"])
        == 2
    )


def test_synthetic_dataset_trains_through_the_datamodule(tmp_path):
    from histo_gan.data import HistoDataModule, SyntheticFolder

    assert run(tmp_path / "syn", n=6) == 0
    dm = HistoDataModule(
        synthetic=SyntheticFolder(tmp_path / "syn"),
        synthetic_ratio=1.0,
        patch_size=64,
        patches_per_epoch=6,
        batch_size=6,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["is_synthetic"].all() and batch["image"].shape == (6, 3, 64, 64)
    assert all(i.isdigit() for i in batch["image_id"])
    assert np.isin(batch["label"].unique().numpy(), np.arange(0, 200)).all()


def test_rerun_with_other_arguments_refuses_unless_asked_to_overwrite_or_extend(tmp_path, capsys):
    out = tmp_path / "syn"
    assert run(out, n=6, size=64, seed=0) == 0
    before = digest(out)
    assert run(out, n=8, size=96, seed=1) == 2
    error = capsys.readouterr().err
    assert "--size 64 (now 96)" in error and "--seed 0 (now 1)" in error
    assert "--n 6 (now 8)" in error and "--overwrite" in error
    assert digest(out) == before  # nothing appended
    assert run(out, n=8, seed=0) == 2  # only --n grew: --extend is offered
    assert "--extend" in capsys.readouterr().err
    assert run(out, "--extend", n=8, seed=0) == 0
    assert run(tmp_path / "direct", n=8, seed=0) == 0
    assert digest(out) == digest(tmp_path / "direct")  # extending == making 8 at once
    assert run(out, "--extend", n=9, seed=2) == 2  # extend never changes the seed
    assert run(out, "--overwrite", n=5, size=96, seed=1) == 0
    dataset = SyntheticDataset(out)
    assert len(dataset) == 5 and dataset[4].image.shape == (96, 96, 3)
    assert (dataset.header["n"], dataset.header["size"], dataset.header["seed"]) == (5, 96, 1)
    assert "5 samples (hou, seed 1)" in capsys.readouterr().out


def test_changed_source_files_are_a_different_dataset(tmp_path, capsys):
    source = tmp_path / "source"
    shutil.copytree(SOURCE, source)
    out = tmp_path / "syn"
    command = ["synthesize", "--source", str(source), "--out", str(out), "--n", "2", "--size", "64"]
    assert main(command) == 0
    first = sorted(source.iterdir())[0]
    first.write_bytes(sorted(SOURCE.iterdir())[1].read_bytes())
    assert main(command) == 2
    assert f"--source: {first.name} changed" in capsys.readouterr().err


def test_a_second_synthesize_on_one_output_is_refused_at_once(tmp_path, capsys):
    out = tmp_path / "syn"
    command = [
        sys.executable,
        "-m",
        "histo_gan.synthesis.cli",
        "--source",
        str(SOURCE),
        "--out",
        str(out),
        "--n",
        "5000",
        "--size",
        "64",
    ]
    first = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 60
        while not (out / "manifest.jsonl").exists() and time.time() < deadline:
            time.sleep(0.05)
        started = time.time()
        assert run(out, n=5000) == 2
        assert time.time() - started < 5
        error = capsys.readouterr().err
        assert f"another writer holds the dataset (pid {first.pid} on " in error
    finally:
        first.kill()
        first.wait()
    assert run(out, n=20) == 2  # the killed run's arguments are recorded: n differs
    assert run(out, "--overwrite", n=20) == 0  # its lock is taken over
    assert len(SyntheticDataset(out)) == 20 and not (out / ".lock").exists()


def test_size_below_the_useful_minimum_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"--size 16 is below the minimum of 32"):
        synthesize(
            ["--source", str(SOURCE), "--out", str(tmp_path / "o"), "--n", "4", "--size", "16"]
        )
    assert not (tmp_path / "o").exists()


def test_an_unwritable_output_is_one_line(tmp_path, capsys, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert run(tmp_path / "ro") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "ro: cannot write the dataset here" in error
