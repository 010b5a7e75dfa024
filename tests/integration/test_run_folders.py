"""Where a run's files go, which checkpoints it keeps, and how errors end a run.

Every run of ``fit``, ``test`` and ``predict`` writes into ``runs/<name>/version_<N>/`` below
the working directory, with or without loggers; nothing else appears there except outputs
the user named. ``last.ckpt`` is the latest state, ``best.ckpt`` the best one, and
``--ckpt_path best|last`` finds them in the newest run of the config's name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from histo_gan.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "conf" / "experiment" / "baseline_unet_tiny.yaml")
TINY = ["--trainer.max_epochs=2", "--data.patches_per_epoch=6", "--data.batch_size=6"]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("loggers", [True, False], ids=["loggers", "no_loggers"])
def test_fit_test_predict_write_only_into_their_run_folders(tmp_path, monkeypatch, loggers):
    monkeypatch.chdir(tmp_path)
    no_logger = [] if loggers else ["--trainer.logger=false"]
    assert main(["fit", "--config", CONFIG, *TINY, *no_logger]) == 0
    assert main(["test", "--config", CONFIG, "--ckpt_path", "best", *no_logger]) == 0
    writer = "--trainer.callbacks+={class_path: histo_gan.callbacks.InstanceMapWriter, init_args: {output_dir: labels}}"
    assert main(["predict", "--config", CONFIG, "--ckpt_path", "last", writer, *no_logger]) == 0

    assert sorted(os.listdir(tmp_path)) == ["labels", "runs"]  # the run folders + what I named
    runs = tmp_path / "runs" / "baseline_unet_tiny"
    assert sorted(os.listdir(runs)) == ["version_0", "version_1", "version_2"]
    fit, test, predict = (files_under(runs / f"version_{n}") for n in range(3))
    assert {
        "config.yaml",
        "split.json",
        "summary_fit.json",
        "metrics.png",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    } <= fit
    assert {
        "config.yaml",
        "summary_test.json",
        "test_metrics.json",
        "test_metrics_per_image.csv",
    } <= test
    assert {"config.yaml", "split.json"} <= predict
    assert ("metrics.csv" in fit) == loggers
    assert not any(name.endswith(".ckpt") for name in test | predict)
    summary = json.loads((runs / "version_0" / "summary_fit.json").read_text())
    assert summary["run_dir"] == str(Path("runs") / "baseline_unet_tiny" / "version_0")
    assert summary["best_model_path"].endswith("version_0/checkpoints/best.ckpt")
    # `best`/`last` were resolved to files of the fit run and recorded in the run's config
    tested = yaml.safe_load((runs / "version_1" / "config.yaml").read_text())
    assert tested["ckpt_path"] == str(
        runs.relative_to(tmp_path) / "version_0/checkpoints/best.ckpt"
    )


def test_a_second_fit_gets_its_own_folder_and_last_is_the_last_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", CONFIG, *TINY, "--trainer.logger=false", "--name=twice"]
    assert main(args) == 0
    assert main([*args, "--trainer.max_epochs=3"]) == 0
    first, second = (tmp_path / "runs" / "twice" / f"version_{n}" / "checkpoints" for n in (0, 1))
    assert sorted(os.listdir(first)) == sorted(os.listdir(second)) == ["best.ckpt", "last.ckpt"]
    assert torch.load(first / "last.ckpt", weights_only=False)["epoch"] == 1
    assert torch.load(second / "last.ckpt", weights_only=False)["epoch"] == 2


class FallingScore(L.LightningModule):
    """Validation score 1, 0.5, 0.33, ...: only the first epoch is ever the best."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/aji", 1.0 / (self.current_epoch + 1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 2)))

    val_dataloader = train_dataloader


def shipped_checkpoint_callback(dirpath: Path):
    """The checkpoint callback of the demo config, writing to ``dirpath``."""
    config = yaml.safe_load(open(CONFIG))
    (spec,) = [c for c in config["trainer"]["callbacks"] if "Checkpoint" in c["class_path"]]
    spec = {**spec, "init_args": {**spec.get("init_args", {}), "dirpath": str(dirpath)}}
    parser = ArgumentParser()
    parser.add_argument("--callback", type=L.Callback)
    return parser.instantiate_classes(parser.parse_object({"callback": spec})).callback


def test_last_ckpt_is_the_last_epoch_even_when_the_score_falls(tmp_path):
    callback = shipped_checkpoint_callback(tmp_path / "checkpoints")
    trainer = L.Trainer(
        max_epochs=3,
        logger=False,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(FallingScore())
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 12
    best = [p.name for p in (tmp_path / "checkpoints").glob("best*.ckpt")]
    assert len(best) == 1
    assert torch.load(tmp_path / "checkpoints" / best[0], weights_only=False)["epoch"] == 0


def test_ckpt_alias_without_a_run_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["test", "--config", CONFIG, "--ckpt_path", "best", "--name=never"]) == 2
    assert "no best.ckpt in runs/never/version_*/checkpoints" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "never").exists() or not os.listdir(tmp_path / "runs" / "never")


@pytest.mark.parametrize("problem", ["empty_folder", "undecodable_image"])
def test_data_errors_are_one_line_and_leave_no_run_folder(tmp_path, monkeypatch, capsys, problem):
    """The first fails while the config is parsed, the second once the run folder exists."""
    monkeypatch.chdir(tmp_path)
    for folder in ("images", "labels"):
        (tmp_path / folder).mkdir()
        if problem == "undecodable_image":
            (tmp_path / folder / "x.png").write_bytes(b"not a png")
    code = main(
        [
            "fit",
            "--config",
            CONFIG,
            "--data.source",
            "histo_gan.data.LabelMapFolder",
            "--data.source.images",
            "images",
            "--data.source.labels",
            "labels",
        ]
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("histo-gan")]
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("histo-gan fit: error: "), err
    assert ("images" if problem == "empty_folder" else "x.png") in lines[0]
    assert not list(tmp_path.glob("runs/*/version_*"))


def test_segment_writes_label_maps_and_overlays_for_a_folder(tmp_path, monkeypatch):
    from histo_gan.data.readers import read_label_map
    from histo_gan.data.sources import bundled_sample_dir

    monkeypatch.chdir(tmp_path)
    assert (
        main(["fit", "--config", CONFIG, *TINY, "--trainer.max_epochs=1", "--trainer.logger=false"])
        == 0
    )
    images = tmp_path / "new_images"
    images.mkdir()
    for source in sorted((bundled_sample_dir() / "images").iterdir())[:2]:
        (images / source.name).write_bytes(source.read_bytes())
    assert (
        main(
            [
                "segment",
                "--ckpt_path",
                "last",
                "--name",
                "baseline_unet_tiny",
                "--images",
                "new_images",
                "--out",
                "labels",
                "--overlays",
            ]
        )
        == 0
    )
    stems = sorted(p.stem for p in images.iterdir())
    assert sorted(p.stem for p in (tmp_path / "labels").glob("*.png")) == stems
    assert sorted(p.stem for p in (tmp_path / "labels" / "overlays").glob("*.png")) == stems
    assert read_label_map(tmp_path / "labels" / f"{stems[0]}.png").shape == (256, 256)
    assert sorted(os.listdir(tmp_path)) == ["labels", "new_images", "runs"]
