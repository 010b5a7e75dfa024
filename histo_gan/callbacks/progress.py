"""A progress bar that counts what the run's budget counts: steps or epochs."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar

__all__ = ["StepProgressBar", "is_step_budget"]


def is_step_budget(trainer) -> bool:
    """True when training ends at ``max_steps`` and not at an epoch count (``max_epochs: -1``)."""
    return trainer.max_steps > 0 and trainer.max_epochs in (None, -1)


class StepProgressBar(RichProgressBar):
    """Lightning's rich bar, but a step-budgeted run shows ``Step n/max_steps``.

    With ``max_epochs: -1`` Lightning's bar reads "Epoch 7/-2" and restarts every epoch; here
    the training bar runs once from 0 to ``max_steps`` (optimizer steps, as Lightning counts
    them: a GAN module stepping two optimizers per batch advances two). Epoch-budgeted runs
    look as before.
    """

    @property
    def total_train_batches(self) -> int | float:
        if is_step_budget(self.trainer):
            return self.trainer.max_steps
        return super().total_train_batches

    def _get_train_description(self, current_epoch: int) -> str:
        if is_step_budget(self.trainer):
            description = f"Step (epoch {current_epoch})"
            return f"{description:{len(self.validation_description)}}"
        return super()._get_train_description(current_epoch)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if is_step_budget(trainer):
            self._update(self.train_progress_bar_id, trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not is_step_budget(trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        # The parent shows batch_idx + 1 as the bar's position; the step budget's is the step.
        super().on_train_batch_end(trainer, pl_module, outputs, batch, trainer.global_step - 1)
