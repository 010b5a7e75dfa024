"""NamedUpdates: optimizers by name; one update guards the forward, steps only its network."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from histo_gan.training.gan_steps import NamedUpdates
from histo_gan.training.schedules import LinearDecay


class TwoNetworks(NamedUpdates, L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.G, self.D = nn.Linear(2, 2), nn.Linear(2, 1)
        self.lr_schedule = LinearDecay(1.0)
        self.seen: dict = {}

    def training_step(self, batch, batch_idx):
        x = batch[0]
        before = {n: p.detach().clone() for n, p in self.named_parameters()}
        with self.update("generator") as g:
            self.seen["D requires grad in G's update"] = any(
                p.requires_grad for p in self.D.parameters()
            )
            fake = self.G(x)
            g.loss = self.D(fake).mean()
        self.seen["G update"] = {
            n: not torch.equal(before[n], p) for n, p in self.named_parameters()
        }
        self.seen["D grads after G's update"] = [p.grad for p in self.D.parameters()]
        self.seen["lr_factor"] = g.lr_factor
        with pytest.raises(ValueError), self.update("discriminator") as d:
            d.loss = self.D(fake.detach()).mean()
            raise ValueError("no step")
        self.seen["D after failed update"] = all(
            torch.equal(before[n], p) for n, p in self.named_parameters() if n.startswith("D.")
        )
        self.seen["requires grad restored"] = all(p.requires_grad for p in self.parameters())
        with pytest.raises(KeyError, match="segmenter"):
            self.optimizer("segmenter")
        with pytest.raises(RuntimeError, match="no loss"), self.update("generator"):
            pass

    def configure_optimizers(self):
        return self.named_optimizers(
            discriminator=(lambda p: torch.optim.SGD(p, lr=0.1), self.D.parameters()),
            generator=(lambda p: torch.optim.SGD(p, lr=0.1), self.G.parameters()),
        )


def test_an_update_freezes_the_others_before_the_forward_and_steps_only_its_own(tmp_path):
    module = TwoNetworks()
    data = torch.utils.data.TensorDataset(torch.randn(4, 2))
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))
    seen = module.seen
    assert seen["D requires grad in G's update"] is False
    assert seen["G update"] == {
        "G.weight": True,
        "G.bias": True,
        "D.weight": False,
        "D.bias": False,
    }
    assert seen["D grads after G's update"] == [None, None]  # no graph was built into D
    assert seen["D after failed update"] and seen["requires grad restored"]
    # LinearDecay(1.0) over 2 epochs, second epoch: 1 - 2 / (2 + 1)
    assert seen["lr_factor"] == pytest.approx(1 / 3)
