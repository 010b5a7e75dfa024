"""Stop a run at the first non-finite loss or weight, and never checkpoint one."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fnmatch import fnmatch

import lightning as L
import torch

__all__ = ["DivergenceError", "DivergenceGuard", "first_non_finite"]


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, weight or buffer."""


def first_non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or infinity, else None.

    One sum per tensor and one ``isfinite`` over all of them on the tensors' device (a NaN or
    infinity anywhere makes its sum non-finite); only on failure are the tensors inspected one
    by one.
    """
    named = [(n, t.detach()) for n, t in named if torch.is_tensor(t) and t.is_floating_point()]
    if not named:
        return None
    device = named[0][1].device
    sums = torch.stack([t.sum(dtype=torch.float32).to(device) for _, t in named])
    if bool(torch.isfinite(sums).all()):
        return None
    for name, tensor in named:
        if not bool(torch.isfinite(tensor).all()):
            return name
    return named[int((~torch.isfinite(sums)).nonzero()[0])][0]  # sum overflowed: huge values


class DivergenceGuard(L.Callback):
    """Raise :class:`DivergenceError` when training diverges, naming what and when.

    After every training batch it checks the values whose names match ``metrics``: the
    logged training metrics (the losses of every module, automatic or manual optimisation)
    and, as ``loss``, the loss returned by ``training_step``; every ``every_n_steps`` batches it also checks all
    parameters and buffers (BatchNorm running statistics included). Before any checkpoint
    is written it checks the weights being saved, so a non-finite ``last.ckpt`` or
    ``best.ckpt`` is never written. The run stops with a non-zero exit status.

    ``histo-gan`` adds one with the defaults to every run that does not configure its own.

    Args:
        every_n_steps: how often (in training batches) to check the weights; 1 for small nets.
        metrics: shell patterns of the names to check (empty: weights and checkpoints only).
    """

    def __init__(
        self, every_n_steps: int = 1, metrics: Sequence[str] = ("loss", "train/*")
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.metrics = tuple(metrics)
        self._batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._batches += 1
        problem = self._bad_loss(trainer, outputs)
        if problem is None and self._batches % self.every_n_steps == 0:
            name = first_non_finite(_weights(pl_module))
            problem = None if name is None else f"weight {name!r} is not finite"
        if trainer.world_size > 1:  # every process stops, or none does
            anywhere = trainer.strategy.reduce_boolean_decision(problem is not None, all=False)
            problem = problem or ("another process diverged" if anywhere else None)
        if problem is not None:
            raise DivergenceError(
                f"training diverged at epoch {trainer.current_epoch}, batch {batch_idx} "
                f"(global step {trainer.global_step}): {problem}"
            )

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        name = first_non_finite(checkpoint.get("state_dict", {}).items())
        if name is not None:
            raise DivergenceError(
                f"not saving a checkpoint at epoch {trainer.current_epoch} (global step "
                f"{trainer.global_step}): weight {name!r} is not finite"
            )

    def _bad_loss(self, trainer, outputs) -> str | None:
        values = dict(trainer.callback_metrics)
        if isinstance(outputs, dict):
            outputs = outputs.get("loss")
        if torch.is_tensor(outputs):
            values["loss"] = outputs
        for name, value in values.items():
            if not any(fnmatch(name, pattern) for pattern in self.metrics):
                continue
            number = float(value.detach().float().mean()) if torch.is_tensor(value) else value
            if isinstance(number, float) and not math.isfinite(number):
                what = "the loss returned by training_step" if name == "loss" else name
                return f"{what} is {number}"
        return None


def _weights(module: torch.nn.Module):
    yield from module.named_parameters()
    yield from module.named_buffers()
