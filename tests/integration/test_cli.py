"""The ``histo-gan`` command: help, config printing, and a fast_dev_run of every shipped config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from histo_gan.cli import main

REPO = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = sorted((REPO / "conf" / "model").glob("*.yaml"))
EXPERIMENT_CONFIGS = sorted((REPO / "conf" / "experiment").glob("*.yaml"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "histo_gan.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_fit_help_lists_the_data_options():
    result = run_cli("fit", "--help")
    assert result.returncode == 0, result.stderr
    assert "--data.patch_size" in result.stdout and "--model CONFIG" in result.stdout


def test_print_config_resolves_the_experiment(tmp_path):
    result = run_cli("fit", "--config", "conf/experiment/baseline_unet_tiny.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["model"]["class_path"] == "histo_gan.modules.SegmenterModule"
    assert config["model"]["init_args"]["network"]["init_args"]["encoder_depth"] == 3
    assert config["data"]["patch_size"] == 128


def test_a_tiny_config_is_its_paper_config_with_the_small_settings():
    result = run_cli(
        "fit", "--config", "conf/experiment/hou2019_refiner_tiny.yaml", "--print_config"
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    model = config["model"]["init_args"]
    # from conf/model/hou2019_refiner.yaml: the paper's loss weights and data pairing
    assert (model["gamma"], model["lambda_l1"], config["data"]["reference"]) == (
        1.0e-7,
        1.0e-5,
        "same_image",
    )
    # from the overlay: the CPU sizes and budget
    assert model["refiner"]["init_args"]["base_channels"] == 16
    assert (config["trainer"]["max_epochs"], config["trainer"]["max_steps"]) == (6, -1)


def fast_dev_run(tmp_path, *configs: str, extra: tuple[str, ...] = ()) -> None:
    args = ["fit"]
    for config in configs:
        args += ["--config", config]
    args += [
        "--trainer.fast_dev_run=true",
        "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
        *extra,
    ]
    main(args)


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=lambda p: p.stem)
def test_every_experiment_config_runs_fast_dev_run(tmp_path, monkeypatch, config):
    monkeypatch.chdir(REPO)
    fast_dev_run(tmp_path, str(config.relative_to(REPO)))


# The paper-size networks run one step on small batches: what is checked is that each config
# builds and trains, not its speed. The paper-size diffusion U-Net (6 levels, 128-512 channels)
# takes about 30 s a forward pass at 128 px and batch 4 on one CPU thread, and its validation
# samples whole 256-px images (two guided steps): it trains on one 64-px patch (a multiple of
# its 32-px size_multiple) and skips validation, which test_diffusion.py checks on the tiny U-Net.
SMALLER = {
    "diffusion": (
        "--data.batch_size=1",
        "--data.patch_size=64",
        "--trainer.fast_dev_run=false",  # it would validate: one training step alone instead
        "--trainer.max_steps=1",
        "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0",
    )
}


@pytest.mark.parametrize("config", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_every_model_config_runs_fast_dev_run_on_the_sample(tmp_path, monkeypatch, config):
    monkeypatch.chdir(REPO)
    fast_dev_run(
        tmp_path,
        "conf/trainer/cpu_tiny.yaml",
        "conf/data/sample.yaml",
        str(config.relative_to(REPO)),
        extra=SMALLER.get(config.stem, ("--data.batch_size=2",)),
    )


def test_unknown_tool_arguments_fail_cleanly():
    result = run_cli("sweep", "does-not-exist.yaml")
    assert result.returncode != 0
    assert "does-not-exist.yaml: sweep file does not exist" in result.stderr
