"""An exponential moving average of a GAN's weights (Lightning's ``EMAWeightAveraging``, as the
generator curve layers add it) leaves training untouched, survives chunked resumes, and is
what validation measures and checkpoints export."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from histo_gan.cli import main

EMA = [
    "--trainer.callbacks+=lightning.pytorch.callbacks.EMAWeightAveraging",
    "--trainer.callbacks.decay=0.5",
]


def _fit(root, *extra: str, config: str = "conf/experiment/mahmood_cyclegan_tiny.yaml") -> dict:
    code = main(
        [
            "fit",
            f"--config={config}",
            "--name=run",
            f"--trainer.default_root_dir={root}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.limit_val_batches=0",
            "--trainer.max_epochs=-1",
            "--trainer.deterministic=true",
            "--seed_everything=0",
            *extra,
        ]
    )
    assert code == 0
    newest = max((root / "run").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    return torch.load(newest / "checkpoints" / "last.ckpt", weights_only=False)


def _largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_the_average_changes_no_training_step_and_resumes_with_its_count(
    tmp_path, repo_root, monkeypatch
):
    monkeypatch.chdir(repo_root)
    # the CycleGAN takes two optimizer steps a batch: 10 steps stop mid-epoch (8 batches an
    # epoch), where last.ckpt is written at the end of training, as by the chunk timer
    plain = _fit(tmp_path / "plain", "--trainer.max_steps=10")
    averaged = _fit(tmp_path / "ema", "--trainer.max_steps=10", *EMA)
    assert _largest_difference(averaged["current_model_state"], plain["state_dict"]) == 0.0
    assert _largest_difference(averaged["state_dict"], averaged["current_model_state"]) > 1e-3
    assert int(averaged["averaging_state"]["n_averaged"]) == 5  # one update a batch

    plain = _fit(tmp_path / "plain", "--trainer.max_steps=20", "--ckpt_path=last")
    averaged = _fit(tmp_path / "ema", "--trainer.max_steps=20", "--ckpt_path=last", *EMA)
    assert _largest_difference(averaged["current_model_state"], plain["state_dict"]) == 0.0
    assert int(averaged["averaging_state"]["n_averaged"]) == 10  # continued, not restarted


class WeightProbe(L.Callback):
    """Writes the generator's weights as validation ends (listed where RealismMonitor is)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            torch.save({k: v.clone() for k, v in pl_module.G.state_dict().items()}, self.path)


def test_validation_sees_the_average_when_listed_after_the_monitor(
    tmp_path, repo_root, monkeypatch
):
    monkeypatch.chdir(repo_root)
    probe = tmp_path / "probe.pt"
    checkpoint = _fit(
        tmp_path,
        "--trainer.max_epochs=1",
        "--trainer.limit_val_batches=1",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.callbacks=[]",
        "--trainer.callbacks+=tests.integration.test_generator_ema.WeightProbe",
        f"--trainer.callbacks.path={probe}",
        "--trainer.callbacks+=histo_gan.callbacks.RunCheckpoint",
        *EMA,
    )
    seen = torch.load(probe, weights_only=False)
    average = {k[2:]: v for k, v in checkpoint["state_dict"].items() if k.startswith("G.")}
    raw = {k[2:]: v for k, v in checkpoint["current_model_state"].items() if k.startswith("G.")}
    assert _largest_difference(seen, average) == 0.0
    assert _largest_difference(seen, raw) > 1e-5  # G moves ~2e-4 in 8 batches at its rate
    assert json.dumps(sorted(seen)) == json.dumps(sorted(average))


@pytest.mark.parametrize(
    "config",
    [
        "conf/experiment/pix2pixhd_stage2_tiny.yaml",
        "conf/experiment/hou2017_refiner_tiny.yaml",
        "conf/experiment/hou2019_refiner_tiny.yaml",
    ],
)
def test_every_gan_module_can_be_averaged(config, tmp_path, repo_root, monkeypatch):
    """The curve layers average these modules too: a copy of each can be made and updated."""
    monkeypatch.chdir(repo_root)
    checkpoint = _fit(tmp_path, "--trainer.max_steps=8", *EMA, config=config)
    assert int(checkpoint["averaging_state"]["n_averaged"]) >= 2
    assert _largest_difference(checkpoint["state_dict"], checkpoint["current_model_state"]) > 0
