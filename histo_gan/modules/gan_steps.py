"""Small helpers shared by the GAN modules (manual optimisation)."""

from __future__ import annotations

from collections.abc import Iterable

import lightning as L
import torch

__all__ = ["EpochSchedulesAndPools", "linear_decay", "optimize"]


def optimize(module: L.LightningModule, optimizer, loss: torch.Tensor) -> None:
    """One manual optimisation step of ``optimizer`` on ``loss``.

    Only the parameters of ``optimizer`` receive gradients (``toggle_optimizer`` freezes the
    others), which keeps a generator step from touching the discriminator and vice versa.
    """
    module.toggle_optimizer(optimizer)
    optimizer.zero_grad(set_to_none=True)
    module.manual_backward(loss)
    optimizer.step()
    module.untoggle_optimizer(optimizer)


def linear_decay(
    optimizers: Iterable[torch.optim.Optimizer], max_epochs: int, decay_epochs: int | None
) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """pix2pix/CycleGAN schedule: constant learning rate, then linear decay to zero.

    The rate is constant for ``max_epochs - decay_epochs`` epochs and then falls linearly so
    that the last epoch runs at ``1 / (decay_epochs + 1)`` of it. ``decay_epochs=None`` decays
    over the second half. Step the schedulers once per epoch.
    """
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1 for a decaying schedule, got {max_epochs}")
    decay = max_epochs // 2 if decay_epochs is None else decay_epochs
    if not 0 <= decay <= max_epochs:
        raise ValueError(f"decay_epochs must be in [0, {max_epochs}], got {decay}")
    constant = max_epochs - decay

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - constant) / float(decay + 1)

    return [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in optimizers]


class EpochSchedulesAndPools:
    """Hooks shared by the GAN modules: per-epoch learning-rate steps, and image pools that
    survive checkpoints (a resumed run continues with the same discriminator history).

    The module lists its pools in :meth:`image_pools`.
    """

    def image_pools(self) -> dict:
        return {}

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["image_pools"] = {
            name: pool.state_dict() for name, pool in self.image_pools().items()
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("image_pools", {})
        for name, pool in self.image_pools().items():
            if name in saved:
                pool.load_state_dict(saved[name])
