"""Checkpoints whose names mean what they say: ``last.ckpt`` and ``best.ckpt``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["RunCheckpoint"]


class RunCheckpoint(ModelCheckpoint):
    """Keep ``last.ckpt`` (always the latest state) and ``best.ckpt`` (best ``monitor``).

    Lightning's ``ModelCheckpoint(monitor=..., save_last=True)`` refreshes ``last.ckpt`` only
    when the monitored value improves; this one writes it after every training epoch (and
    after a validation inside an epoch), whatever the score and however rarely validation
    runs, and at the batch where a run is told to stop mid-epoch, so that resuming finishes
    that epoch. Without ``monitor`` there is no ``best.ckpt``. Files are written to a temporary
    name and renamed, so a killed run never leaves a torn checkpoint. ``dirpath`` defaults to
    ``<run folder>/checkpoints``.

    Resuming a run into a new run folder (``histo-gan fit --ckpt_path last``) copies the
    previous ``best.ckpt`` along, so ``best.ckpt`` stays the best of the whole training.

    Args:
        monitor: logged metric that ranks checkpoints, e.g. ``val/aji``; None: last only.
        mode: ``max`` or ``min``.
        dirpath: folder of the checkpoints; None: ``<run folder>/checkpoints``.
        filename: name of the best checkpoint (``--ckpt_path best`` looks for ``best.ckpt``).
        save_weights_only: save the weights without optimizer and loop state.
    """

    def __init__(
        self,
        monitor: str | None = None,
        mode: str = "max",
        dirpath: str | None = None,
        filename: str = "best",
        save_weights_only: bool = False,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=monitor,
            mode=mode,
            save_last=True,
            save_top_k=1 if monitor else 0,
            save_weights_only=save_weights_only,
            enable_version_counter=False,
        )
        self._last_saved_step: int | None = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        # Every epoch, whatever the validation schedule: Lightning's own rule skips the epoch
        # end when validation is less frequent than every epoch (check_val_every_n_epoch > 1),
        # and a long run validated every 28 epochs would lose up to 28 epochs to a kill.
        self._refresh_last(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        # A run told to stop inside an epoch (ChunkTimer, Lightning's Timer) is saved here,
        # before the loop closes the epoch: a checkpoint written at the epoch's or the
        # training's end records that epoch as finished, and the resumed run would skip its
        # remaining batches (an epoch-budgeted GAN lost up to an epoch per chunk). Lightning
        # runs checkpoint callbacks after the others, so a stop requested by this batch's hooks
        # is seen.
        if trainer.should_stop:
            self._refresh_last(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        # A run that ends by its budget (steps or epochs) keeps its final state too.
        self._refresh_last(trainer)

    def _refresh_last(self, trainer) -> None:
        from lightning.pytorch.trainer.states import TrainerFn

        if (
            trainer.fast_dev_run
            or trainer.sanity_checking
            or trainer.state.fn != TrainerFn.FITTING
            or self._last_saved_step == trainer.global_step
        ):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_saved_step = trainer.global_step

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        partial = f"{filepath}.partial"
        super()._save_checkpoint(trainer, partial)
        if trainer.is_global_zero:
            os.replace(partial, filepath)
        trainer.strategy.barrier()
        self._last_checkpoint_saved = filepath

    def load_state_dict(self, state_dict: dict) -> None:
        previous_dir, best = state_dict.get("dirpath"), state_dict.get("best_model_path")
        if previous_dir == self.dirpath or not best or not Path(best).is_file():
            super().load_state_dict(state_dict)
            return
        # Resumed into a new run folder: the best checkpoint of the earlier folder comes along
        # when training starts (not for test/predict), so that it keeps competing.
        self._inherited_best = (best, state_dict["best_model_score"])

    def on_train_start(self, trainer, pl_module) -> None:
        inherited, self._inherited_best = getattr(self, "_inherited_best", None), None
        if inherited is None or self.dirpath is None:
            return
        best, score = inherited
        here = str(Path(self.dirpath) / Path(best).name)
        if trainer.is_global_zero:
            Path(self.dirpath).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(best, f"{here}.partial")
            os.replace(f"{here}.partial", here)
        trainer.strategy.barrier()
        self.best_model_path, self.best_model_score = here, score
        if score is not None:
            self.best_k_models = {here: score}
            self.kth_best_model_path, self.kth_value = here, score
