"""Divergence stops the run: one line naming the loss or weight and the step, exit status 1,
and no checkpoint with a NaN or infinity is ever written (automatic and manual optimisation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from histo_gan.callbacks import DivergenceGuard
from histo_gan.callbacks.divergence import first_non_finite
from histo_gan.cli import main

REPO = Path(__file__).resolve().parents[2]
UNET = str(REPO / "conf" / "experiment" / "baseline_unet_tiny.yaml")
CGAN = str(REPO / "conf" / "experiment" / "mahmood_cgan_tiny.yaml")
TINY = [
    "--trainer.max_epochs=2",
    "--data.patches_per_epoch=12",
    "--data.batch_size=6",
    "--trainer.logger=false",
]
ONLY_THE_CHECKPOINT_GUARD = (
    "--trainer.callbacks+={class_path: histo_gan.callbacks.DivergenceGuard, "
    "init_args: {every_n_steps: 1000, metrics: []}}"
)

CASES = {
    "adam_lr_1e30": (UNET, ["--model.init_args.optimizer.init_args.lr=1e30"], "diverged"),
    "sgd_lr_1e3_batchnorm": (
        UNET,
        ["--model.init_args.optimizer=torch.optim.SGD", "--model.init_args.optimizer.lr=1e3"],
        "diverged",
    ),
    "cgan_manual_optimisation": (CGAN, ["--model.init_args.lambda_l1=1e39"], "train/loss"),
    "checkpoint_guard_alone": (
        UNET,
        ["--model.init_args.optimizer.init_args.lr=1e30", ONLY_THE_CHECKPOINT_GUARD],
        "not saving a checkpoint",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_divergence_stops_the_run_and_saves_nothing_non_finite(tmp_path, monkeypatch, capsys, case):
    config, args, expected = CASES[case]
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", config, *TINY, *args]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("histo-gan")]
    assert len(lines) == 1 and lines[0].startswith("histo-gan fit: error: "), lines
    assert (
        expected in lines[0]
        and "step" in lines[0]
        and ("nan" in lines[0] or "inf" in lines[0] or "not finite" in lines[0])
    )
    for checkpoint in tmp_path.glob("runs/*/version_*/checkpoints/*.ckpt"):
        state = torch.load(checkpoint, weights_only=False)["state_dict"]
        assert first_non_finite(state.items()) is None, checkpoint


def test_first_non_finite_names_the_tensor():
    tensors = {"a": torch.ones(3), "b": torch.tensor([1.0, float("inf")]), "c": torch.zeros(2)}
    assert first_non_finite(tensors.items()) == "b"
    assert first_non_finite({"a": torch.ones(3), "n": torch.arange(3)}.items()) is None
    assert first_non_finite({"x": torch.tensor([float("nan")])}.items()) == "x"
    assert first_non_finite({"huge": torch.full((4,), 3e38)}.items()) == "huge"  # sum overflows
    with pytest.raises(ValueError):
        DivergenceGuard(every_n_steps=0)
