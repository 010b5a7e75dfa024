"""pix2pixHD's coarse-to-fine training: stages over training batches, a checkpointed phase plan.

Phases, in order:

- ``global``: the global generator alone, on 2x-downsampled pairs;
- ``enhancer``: the local enhancer at full resolution with the global generator frozen
  (pix2pixHD's ``niter_fix_global``);
- ``joint``: both fine-tuned together, until the end of training.

The lengths are shares of the training budget, resolved into batch counts once, when training
first starts (:meth:`CoarseToFine.resolve`), and saved with the position in checkpoints: a
resumed run, even one given a larger budget, switches at the same batch as the original run.
pix2pixHD trains the global generator in a separate run; one run through the stages is the
choice here (same networks, one checkpoint).
"""

from __future__ import annotations

from histo_gan.training.phases import Phase, PhasePlan

__all__ = ["CoarseToFine", "training_batches"]

GLOBAL, ENHANCER, JOINT = "global", "enhancer", "joint"


def training_batches(trainer, optimizer_steps_per_batch: int) -> int:
    """Training batches of the whole budget: the smaller of ``max_epochs`` x batches per epoch
    and ``max_steps`` / optimizer steps per batch (``global_step`` counts every optimizer's
    step under manual optimisation)."""
    budgets = []
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        budgets.append(trainer.max_epochs * int(trainer.num_training_batches))
    if trainer.max_steps is not None and trainer.max_steps > 0:
        budgets.append(trainer.max_steps // optimizer_steps_per_batch)
    if not budgets:
        raise ValueError("CoarseToFine needs a budget in epochs or steps (max_epochs or max_steps)")
    return max(1, min(budgets))


class CoarseToFine:
    """Which generator trains on each batch: ``global`` -> ``enhancer`` -> ``joint``.

    Args:
        global_share: share of the training batches for the global generator alone.
        fixed_global_share: share of the batches after that for the enhancer with the global
            generator frozen.
    """

    def __init__(self, global_share: float = 0.5, fixed_global_share: float = 0.0) -> None:
        if not (
            0 <= global_share and 0 <= fixed_global_share and global_share + fixed_global_share <= 1
        ):
            raise ValueError(
                f"shares must be >= 0 and sum to <= 1, got {global_share} and {fixed_global_share}"
            )
        self.global_share, self.fixed_global_share = global_share, fixed_global_share
        self.lengths: tuple[int, int] | None = None
        self.plan: PhasePlan | None = None

    def resolve(self, total_batches: int) -> None:
        """Fix the phase lengths for a budget of ``total_batches`` (no-op once resolved)."""
        if self.lengths is None:
            self._build(
                round(self.global_share * total_batches),
                round(self.fixed_global_share * total_batches),
            )

    def _build(self, global_batches: int, fixed_batches: int) -> None:
        self.lengths = (global_batches, fixed_batches)
        self.plan = PhasePlan(
            [Phase(GLOBAL, global_batches), Phase(ENHANCER, fixed_batches), Phase(JOINT, 1)]
        )

    @property
    def phase(self) -> str:
        if self.plan is None:
            raise RuntimeError("CoarseToFine.resolve(total_batches) was not called")
        return self.plan.phase

    def advance(self) -> None:
        self.plan.advance()

    def state_dict(self) -> dict:
        if self.plan is None:
            return {"lengths": None, "position": 0}
        return {"lengths": list(self.lengths), **self.plan.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state["lengths"] is None:
            self.lengths = self.plan = None
            return
        self._build(*state["lengths"])
        self.plan.load_state_dict(state)
