"""Small helpers shared by the GAN modules (manual optimisation)."""

from __future__ import annotations

from collections.abc import Iterable

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable

__all__ = ["PAPER_ADAM", "make_optimizer", "optimize"]

PAPER_ADAM = {"lr": 2e-4, "betas": (0.5, 0.999)}  # pix2pix, CycleGAN, pix2pixHD, Mahmood


def make_optimizer(
    factory: OptimizerCallable | None, parameters: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """``factory(parameters)``, or Adam(lr 2e-4, betas (0.5, 0.999)) when no factory is given."""
    parameters = list(parameters)
    if factory is None:
        return torch.optim.Adam(parameters, **PAPER_ADAM)
    return factory(parameters)


def optimize(
    module: L.LightningModule, optimizer, loss: torch.Tensor, clip_norm: float | None = None
) -> None:
    """One manual optimisation step of ``optimizer`` on ``loss``.

    Only the parameters of ``optimizer`` receive gradients (``toggle_optimizer`` freezes the
    others), which keeps a generator step from touching the discriminator and vice versa.
    ``clip_norm`` clips the gradients' total norm before the step (``None``: no clipping).
    """
    module.toggle_optimizer(optimizer)
    optimizer.zero_grad(set_to_none=True)
    module.manual_backward(loss)
    if clip_norm is not None:
        module.clip_gradients(
            optimizer, gradient_clip_val=clip_norm, gradient_clip_algorithm="norm"
        )
    optimizer.step()
    module.untoggle_optimizer(optimizer)
