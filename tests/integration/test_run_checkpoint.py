"""RunCheckpoint keeps ``last.ckpt`` at the latest epoch whatever the validation schedule, so
a run killed between validations loses at most the epoch it was in."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from histo_gan.callbacks import RunCheckpoint


class Line(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return (self.weight - x).square().mean()

    def validation_step(self, batch, batch_idx):
        (x,) = batch
        self.log("val/score", -(self.weight - x).abs().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class LastEpochSeen(L.Callback):
    """At the start of each epoch, the epoch of the ``last.ckpt`` on disk."""

    def __init__(self, path) -> None:
        self.path, self.seen = path, []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch:
            self.seen.append(torch.load(self.path, weights_only=False)["epoch"])


@pytest.mark.parametrize("monitor", [None, "val/score"])
def test_last_ckpt_follows_every_epoch_between_validations(tmp_path, monitor):
    data = DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=4)
    checkpoint = RunCheckpoint(monitor=monitor, dirpath=str(tmp_path))
    seen = LastEpochSeen(tmp_path / "last.ckpt")
    trainer = L.Trainer(
        max_epochs=5,
        check_val_every_n_epoch=3,  # validation at the end of epoch 2 only
        callbacks=[checkpoint, seen],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(Line(), data, data)
    assert seen.seen == [0, 1, 2, 3]
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert last["epoch"] == 4 and last["global_step"] == 10
    assert (tmp_path / "best.ckpt").exists() == (monitor is not None)
