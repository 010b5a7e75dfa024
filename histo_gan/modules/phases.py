"""Phase schedules of multi-network training (e.g. Hou et al. 2017, Algorithm 1).

A schedule is a sequence of stages: a :class:`Phase` runs for ``steps`` training batches; a
:class:`Rounds` block repeats its phases ``rounds`` times. Positions count the module's own
training batches (not ``global_step``, which counts every optimizer step), and the position is
the whole state, saved in checkpoints through :meth:`PhaseSchedule.state_dict`. After the last
stage the schedule stays in it (a :class:`Rounds` keeps cycling), so the trainer's budget, not
the schedule, ends training.

Example (pre-train G for 2 batches, then 3 rounds of 1 G batch and 2 D batches)::

    PhaseSchedule([Phase("g", 2), Rounds(3, [Phase("g", 1), Phase("d", 2)])])
    # g g | g d d | g d d | g d d | g d d ...
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Phase", "PhaseSchedule", "Rounds"]


@dataclass(frozen=True)
class Phase:
    """``steps`` consecutive training batches of the phase called ``name``."""

    name: str
    steps: int

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"phase {self.name!r}: steps must be >= 0, got {self.steps}")

    @property
    def length(self) -> int:
        """Training batches of the stage (as :attr:`Rounds.length`)."""
        return self.steps


@dataclass(frozen=True)
class Rounds:
    """``rounds`` repetitions of ``phases`` in order."""

    rounds: int
    phases: tuple[Phase, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.rounds and not sum(p.steps for p in self.phases):
            raise ValueError("a Rounds block needs at least one phase with steps > 0")

    @property
    def cycle(self) -> int:
        return sum(p.steps for p in self.phases)

    @property
    def length(self) -> int:
        return self.rounds * self.cycle


class PhaseSchedule:
    """Which phase each training batch belongs to, and the counter that says where we are.

    Args:
        stages: :class:`Phase` and :class:`Rounds` in order; at least one with steps.
    """

    def __init__(self, stages: list[Phase | Rounds]) -> None:
        self.stages = [s for s in stages if s.length > 0]
        if not self.stages:
            raise ValueError("a phase schedule needs at least one stage with steps > 0")
        self.position = 0

    def _lookup(self, position: int) -> tuple[str, int, int]:
        """``(phase name, stage index, round index)`` of batch ``position``."""
        for index, stage in enumerate(self.stages):
            last = index == len(self.stages) - 1
            if position < stage.length or last:
                if isinstance(stage, Phase):
                    return stage.name, index, 0
                round_index, offset = divmod(position, stage.cycle)
                for phase in stage.phases:
                    if offset < phase.steps:
                        return phase.name, index, round_index
                    offset -= phase.steps
            position -= stage.length
        raise AssertionError("unreachable: the last stage absorbs every position")

    @property
    def phase(self) -> str:
        """The phase of the current training batch."""
        return self._lookup(self.position)[0]

    @property
    def stage(self) -> int:
        return self._lookup(self.position)[1]

    def advance(self) -> None:
        """Move on by one training batch (call once per batch, after its steps)."""
        self.position += 1

    def names(self, count: int, start: int = 0) -> list[str]:
        """The phases of ``count`` batches from ``start`` (for logs and tests)."""
        return [self._lookup(p)[0] for p in range(start, start + count)]

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])
