"""``histo-gan segment``: a quiet terminal, and unreadable images stop it or, if asked, are skipped."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from histo_gan.cli import main
from histo_gan.data.sources import bundled_sample_dir

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "conf" / "experiment" / "baseline_unet_tiny.yaml")
TINY = [
    "--trainer.max_epochs=1",
    "--data.patches_per_epoch=6",
    "--data.batch_size=6",
    "--trainer.logger=false",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("segment_runs")
    assert main(["fit", "--config", CONFIG, *TINY, f"--trainer.default_root_dir={root}"]) == 0
    (found,) = root.glob("baseline_unet_tiny/version_0/checkpoints/last.ckpt")
    return found


def image_folder(tmp_path: Path, broken: dict[str, bytes]) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((bundled_sample_dir() / "images").iterdir())[:2]:
        shutil.copy(source, images / source.name)
    for name, content in broken.items():
        (images / name).write_bytes(content)
    return images


def segment(checkpoint: Path, images: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "segment",
            "--ckpt_path",
            str(checkpoint),
            "--images",
            str(images),
            "--out",
            str(out),
            *extra,
        ]
    )


def test_segment_prints_no_lightning_warning(checkpoint, tmp_path, capsys):
    images = image_folder(tmp_path, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert segment(checkpoint, images, tmp_path / "out") == 0
    printed = capsys.readouterr()
    for noise in ("args parameter", "callbacks used to create the checkpoint"):
        assert not [w for w in caught if noise in str(w.message)]
        assert noise not in printed.err + printed.out
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def test_an_unreadable_image_stops_segment_before_anything_is_written(checkpoint, tmp_path, capsys):
    images = image_folder(tmp_path, {"broken.png": b"\x89PNG not really"})
    assert segment(checkpoint, images, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "broken.png" in error and "could not decode" in error
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_skip_unreadable_segments_the_rest_and_lists_the_skipped(checkpoint, tmp_path, capsys):
    images = image_folder(tmp_path, {"broken.png": b"\x89PNG not really", "empty.tif": b""})
    out = tmp_path / "out"
    assert segment(checkpoint, images, out, "--skip-unreadable", "--overlays") == 0
    good = sorted(p.stem for p in images.iterdir() if p.name not in ("broken.png", "empty.tif"))
    assert sorted(p.stem for p in out.glob("*.png")) == good
    assert sorted(p.stem for p in (out / "overlays").glob("*.png")) == good
    listed = (out / "unreadable.txt").read_text().splitlines()
    assert [line.split(": ", 1)[0] for line in listed] == [
        str(images / "broken.png"),
        str(images / "empty.tif"),
    ]
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "skipped 2 unreadable images" in last and "broken.png, empty.tif" in last
    assert str(out / "unreadable.txt") in last


def test_skip_unreadable_with_nothing_readable_is_an_error(checkpoint, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"")
    assert segment(checkpoint, images, tmp_path / "out", "--skip-unreadable") == 2
    error = capsys.readouterr().err
    assert "none of the 1 images can be read" in error and "a.png" in error
    assert not (tmp_path / "out").exists()
