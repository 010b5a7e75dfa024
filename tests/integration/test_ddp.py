"""Two processes (DDP on CPU, gloo) report exactly the metrics of one process."""

from __future__ import annotations

import json

import pytest

from histo_gan.cli import main
from tests.integration.cli_process import histo_gan_process

CONFIG = "conf/experiment/baseline_unet_tiny.yaml"
# 6 crops: 1 val, 3 test images, so one of the two processes gets a padding item at test time.
SPLIT = [
    "--data.split",
    "histo_gan.data.RandomSplit",
    "--data.split.val_fraction",
    "0.2",
    "--data.split.test_fraction",
    "0.5",
]


def arguments(out, name, subcommand, *args) -> list[str]:
    logger = "--trainer.logger=[{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: runs}}]"
    return [
        subcommand,
        "--config",
        CONFIG,
        logger,
        f"--trainer.default_root_dir={out}",
        f"--name={name}",
        *SPLIT,
        *args,
    ]


def metrics_of(out, name) -> dict:
    return json.loads((out / name / "version_0" / "test_metrics.json").read_text())


@pytest.mark.slow
def test_ddp_metrics_equal_single_process(tmp_path, repo_root, monkeypatch):
    """One process trains; the test of its checkpoint under two DDP processes (Lightning's own
    launcher, as ``--trainer.devices=2`` starts it) scores each image once, to one process's
    figures. (Training under DDP: test_multinode.py.)"""
    monkeypatch.chdir(repo_root)
    checkpoint = "--trainer.callbacks=[{class_path: histo_gan.callbacks.RunCheckpoint}]"
    fit = arguments(tmp_path, "fit", "fit", checkpoint, "--trainer.max_epochs=1")
    assert main([*fit, "--data.patches_per_epoch=12"]) == 0
    common = [
        "--trainer.callbacks=[]",
        "--ckpt_path",
        f"{tmp_path}/fit/version_0/checkpoints/last.ckpt",
    ]
    two = arguments(tmp_path, "two", "test", *common, "--trainer.strategy=ddp")
    histo_gan_process(*two, "--trainer.devices=2", cwd=repo_root)
    assert main(arguments(tmp_path, "one", "test", *common, "--trainer.devices=1")) == 0
    one, two = metrics_of(tmp_path, "one"), metrics_of(tmp_path, "two")
    assert one["num_images"] == two["num_images"] == 3
    for kind in ("per_image", "aggregate"):
        for name, value in one[kind].items():
            assert two[kind][name] == pytest.approx(value, abs=1e-6), (kind, name)
