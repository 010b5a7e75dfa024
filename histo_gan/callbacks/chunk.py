"""End a ``fit`` after a wall-clock chunk, with ``last.ckpt`` written, so long runs resume.

Long trainings run as a chain of chunks (``experiments/protocols/chunked_fit.sh``): each
``histo-gan fit --ckpt_path last --max_chunk_minutes M`` trains for about ``M`` minutes from
the latest checkpoint, stops between two steps and saves ``last.ckpt``; a chunk cut short by
a lost session costs at most that chunk. Unlike Lightning's ``max_time`` (whose clock is
restored from the checkpoint, so a resumed run would stop at once), the clock starts afresh
in every process.
"""

from __future__ import annotations

import time

import lightning as L

__all__ = ["ChunkTimer"]


class ChunkTimer(L.Callback):
    """Stop training once ``max_minutes`` of wall time have passed since training started.

    Under DDP rank 0's clock decides, broadcast at every batch, so that all processes stop
    after the same batch (each on its own clock, one would leave the loop while another waits
    for it in the next step's gradient all-reduce, and the checkpoint saved at the stop would
    wait in its barrier).

    Args:
        max_minutes: length of the chunk in minutes (> 0).
    """

    def __init__(self, max_minutes: float) -> None:
        if not max_minutes > 0:
            raise ValueError(f"max_chunk_minutes must be positive, got {max_minutes}")
        self.max_seconds = 60.0 * max_minutes
        self.started: float | None = None
        self.stopped_early = False

    def on_train_start(self, trainer, pl_module) -> None:
        self.started = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.started is None:
            return
        elapsed = time.monotonic() - self.started >= self.max_seconds
        if trainer.strategy.broadcast(elapsed, src=0):
            trainer.should_stop = True
            self.stopped_early = True
