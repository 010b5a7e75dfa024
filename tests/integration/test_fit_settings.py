"""``fit`` checks the data settings before training: exit 2 with the key, the value and the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from histo_gan.cli import main
from histo_gan.config_origin import origin_of
from histo_gan.data import HistoDataModule, SettingError

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "conf" / "experiment" / "baseline_unet_tiny.yaml")


def fit(*extra: str) -> int:
    return main(["fit", "--config", CONFIG, "--trainer.logger=false", *extra])


def test_batch_size_zero_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fit("--data.batch_size", "0") == 2
    error = capsys.readouterr().err
    assert (
        "histo-gan fit: error: data.batch_size 0 (set on the command line): must be an "
        "integer of at least 1" in error
    )
    assert "Traceback" not in error and not os.listdir(tmp_path)  # no run folder


def test_batch_size_zero_in_a_config_file_names_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  batch_size: 0\n")
    assert fit("--config", str(bad)) == 2
    assert f"data.batch_size 0 (set in {bad}): must be" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml"]


def test_patch_size_larger_than_the_images_names_the_image(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fit("--data.patch_size=4096") == 2
    error = capsys.readouterr().err
    assert (
        "data.patch_size 4096 (set on the command line): larger than the training image " in error
    )
    assert "sample_data/images/TCGA-" in error and "(256x256)" in error
    assert "Traceback" not in error
    assert not list(tmp_path.glob("runs/*/version_*"))  # the run folder is removed


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("batch_size", 0),
        ("patches_per_epoch", 0),
        ("patch_size", -8),
        ("num_workers", -1),
        ("synthetic_ratio", 1.5),
    ],
)
def test_the_datamodule_refuses_settings_that_cannot_work(setting, value):
    with pytest.raises(SettingError, match=rf"^data\.{setting} {value}: "):
        HistoDataModule(**{setting: value})


def test_patches_per_epoch_below_the_batch_size_names_both():
    with pytest.raises(
        SettingError, match=r"data.patches_per_epoch 4: must be at least data.batch_size \(8\)"
    ):
        HistoDataModule(patches_per_epoch=4, batch_size=8)


def test_origin_follows_the_command_line_order(tmp_path):
    first, data_only = tmp_path / "a.yaml", tmp_path / "data.yaml"
    first.write_text("data:\n  init_args:\n    batch_size: 4\ntrainer: {max_epochs: 1}\n")
    data_only.write_text("batch_size: 2\n")
    key = "data.batch_size"
    assert origin_of(["--config", str(first)], key) == f"set in {first}"
    assert origin_of([f"--config={first}", "--data", str(data_only)], key) == f"set in {data_only}"
    assert (
        origin_of(["--config", str(first), "--data.batch_size=3"], key) == "set on the command line"
    )
    assert origin_of(["--data.batch_size", "3", "-c", str(first)], key) == f"set in {first}"
    assert origin_of(["--config", str(data_only), "--trainer.max_epochs", "2"], key) is None
