"""GAN step mechanics in one place: optimizers by name and one context manager per update.

A manually optimised module (``automatic_optimization = False``) mixes in :class:`NamedUpdates`,
builds its optimizers by name in ``configure_optimizers``::

    return self.named_optimizers(generator=(self.generator_optimizer, self.G.parameters()),
                                 discriminator=(self.discriminator_optimizer, self.D.parameters()))

and writes each update of its training step as one block::

    with self.update("generator") as step:   # only G's parameters require grad from here on
        fake = self.G(x)
        step.loss = adversarial(self.D(fake)) + l1(fake, y)
    # here: G's gradients were zeroed, step.loss back-propagated, clipped, stepped

On entry the update sets that optimizer's learning rate from the module's ``lr_schedule`` (the
one schedule mechanism of the GAN modules, :mod:`histo_gan.training.schedules`) and gives only
its parameters ``requires_grad`` (``toggle_optimizer``), before any forward, so no graph is
built into the other networks; it zeroes the gradients. On a clean exit it back-propagates
``step.loss`` (``manual_backward``), clips the gradient norm when asked, steps the optimizer and
restores ``requires_grad``. Optimizers are looked up by name, never by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from lightning.pytorch.cli import OptimizerCallable

from histo_gan.training.schedules import ConstantRate

__all__ = ["PAPER_ADAM", "NamedUpdates", "Update", "make_optimizer"]

PAPER_ADAM = {"lr": 2e-4, "betas": (0.5, 0.999)}  # pix2pix, CycleGAN, pix2pixHD, Mahmood


def make_optimizer(
    factory: OptimizerCallable | None, parameters: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """``factory(parameters)``, or Adam(lr 2e-4, betas (0.5, 0.999)) when no factory is given."""
    parameters = list(parameters)
    if factory is None:
        return torch.optim.Adam(parameters, **PAPER_ADAM)
    return factory(parameters)


@dataclass
class Update:
    """One update in progress: set ``loss`` (a scalar tensor) inside the ``with`` block.

    ``lr_factor`` is the schedule's factor of the optimizer's initial rate for this update.
    """

    name: str
    lr_factor: float
    loss: torch.Tensor | None = None


class NamedUpdates:
    """LightningModule mixin: optimizers by name and :meth:`update`, one block per update.

    The module sets ``lr_schedule`` (a :class:`~histo_gan.training.schedules.ConstantRate` or
    subclass) before training.
    """

    lr_schedule: ConstantRate

    def named_optimizers(
        self, **groups: tuple[OptimizerCallable | None, Iterable[torch.nn.Parameter]]
    ) -> list[torch.optim.Optimizer]:
        """``configure_optimizers``' value: one optimizer per ``name=(factory, parameters)``
        (``factory`` ``None``: Adam 2e-4, betas (0.5, 0.999)), in the order given."""
        self._optimizer_names = list(groups)
        return [make_optimizer(factory, parameters) for factory, parameters in groups.values()]

    def optimizer(self, name: str):
        """The (Lightning-wrapped) optimizer called ``name``."""
        names = self.__dict__.get("_optimizer_names", [])
        if name not in names:
            raise KeyError(f"{type(self).__name__} has no optimizer {name!r} (has {names})")
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return optimizers[names.index(name)]

    @contextmanager
    def update(self, name: str, clip_norm: float | None = None) -> Iterator[Update]:
        """One optimisation step of the optimizer ``name`` on the ``loss`` set in the block.

        ``clip_norm`` clips the gradients' total norm before the step (``None``: no clipping).
        An exception inside the block leaves the parameters unchanged.
        """
        optimizer = self.optimizer(name)
        step = Update(name, self.lr_schedule.apply(optimizer, self.trainer))
        self.toggle_optimizer(optimizer)
        try:
            optimizer.zero_grad(set_to_none=True)
            yield step
            if step.loss is None:
                raise RuntimeError(f"update {name!r}: the block set no loss")
            self.manual_backward(step.loss)
            if clip_norm is not None:
                self.clip_gradients(
                    optimizer, gradient_clip_val=clip_norm, gradient_clip_algorithm="norm"
                )
            optimizer.step()
        finally:
            self.untoggle_optimizer(optimizer)
