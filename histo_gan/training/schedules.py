"""Learning-rate schedules defined on the training budget the user gave.

A schedule maps *progress through the budget* to a factor of each optimizer's initial rate and
is applied explicitly at the start of every training step (``schedule.apply(optimizers,
trainer)``), so it is right for any budget and after any resume:

- the budget is whichever of ``max_epochs``, ``max_steps`` and ``max_time`` ends training
  first (the one with the largest fraction done);
- the position is read from the trainer (epoch, ``global_step``, elapsed time), which a
  checkpoint restores; the initial rate is kept in the optimizer's ``param_groups``
  (``initial_lr``), which a checkpoint also restores;
- so extending a finished run (``max_epochs`` 2 -> 3 with ``--ckpt_path``) recomputes the
  schedule on the new budget instead of resuming at a rate of 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ConstantRate", "LinearDecay", "Progress", "training_progress"]


@dataclass(frozen=True)
class Progress:
    """``position`` units done (counting the current one) out of ``total``; ``unit`` is the
    size of one step of ``position`` (1 for epochs and steps, 0 for continuous time)."""

    position: float
    total: float
    unit: float

    @property
    def fraction(self) -> float:
        return self.position / self.total


def _elapsed_time(trainer) -> Progress | None:
    from lightning.pytorch.callbacks import Timer

    for callback in trainer.callbacks:
        if isinstance(callback, Timer) and callback._duration is not None:
            return Progress(callback.time_elapsed("train"), callback._duration, 0.0)
    return None


def training_progress(trainer) -> Progress | None:
    """The budget that ends training first, or ``None`` for an unlimited run.

    Epochs count the running epoch as done (the pix2pix convention: the rate is constant over
    an epoch); steps are ``global_step``, which counts every optimizer step, as ``max_steps``
    does.
    """
    budgets = []
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        budgets.append(Progress(trainer.current_epoch + 1, trainer.max_epochs, 1.0))
    if trainer.max_steps is not None and trainer.max_steps > 0:
        budgets.append(Progress(trainer.global_step + 1, trainer.max_steps, 1.0))
    elapsed = _elapsed_time(trainer)
    if elapsed is not None:
        budgets.append(elapsed)
    return max(budgets, key=lambda p: p.fraction) if budgets else None


def _param_groups(optimizers) -> Iterable[dict]:
    for optimizer in optimizers if isinstance(optimizers, list | tuple) else [optimizers]:
        yield from getattr(optimizer, "optimizer", optimizer).param_groups  # LightningOptimizer


class ConstantRate:
    """Every optimizer keeps its initial rate."""

    def factor(self, progress: Progress | None) -> float:
        return 1.0

    def apply(self, optimizers, trainer) -> float:
        """Set every param group's ``lr`` to ``initial_lr * factor``; returns the factor."""
        factor = self.factor(training_progress(trainer))
        for group in _param_groups(optimizers):
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
        return factor


class LinearDecay(ConstantRate):
    """pix2pix/CycleGAN: constant, then linear decay over the last ``decay_fraction`` of the budget.

    With ``total`` units, ``decay = decay_fraction * total`` and position ``p``, the factor is
    ``1 - max(0, p - (total - decay)) / (decay + unit)``: for 200 epochs and 0.5 this is the
    papers' 100 constant epochs and 100 decaying ones, the last at ``1/101`` of the rate. It stays
    in ``[0, 1]`` for every budget.
    """

    def __init__(self, decay_fraction: float = 0.5) -> None:
        if not 0.0 <= decay_fraction <= 1.0:
            raise ValueError(f"LinearDecay: decay_fraction must be in [0, 1], got {decay_fraction}")
        self.decay_fraction = decay_fraction

    def factor(self, progress: Progress | None) -> float:
        if progress is None or self.decay_fraction == 0:
            return 1.0
        decay = self.decay_fraction * progress.total
        constant = progress.total - decay
        value = 1.0 - max(0.0, progress.position - constant) / (decay + progress.unit)
        return float(min(1.0, max(0.0, value)))
