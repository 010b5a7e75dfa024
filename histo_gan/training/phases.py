"""Phase plans of multi-network training: which network a training batch steps.

A plan is a sequence of stages: a :class:`Phase` runs for ``steps`` training batches; a
:class:`Rounds` block repeats its phases ``rounds`` times. Positions count the module's own
training batches (not ``global_step``, which counts every optimizer step), and the position is
the whole state, saved in checkpoints through :meth:`PhasePlan.state_dict`. After the last
stage the plan stays in it (a :class:`Rounds` keeps cycling), so the trainer's budget, not
the plan, ends training.

Example (pre-train G for 2 batches, then 3 rounds of 1 G batch and 2 D batches)::

    PhasePlan([Phase("g", 2), Rounds(3, [Phase("g", 1), Phase("d", 2)])])
    # g g | g d d | g d d | g d d | g d d ...

:class:`RefinerPhases` is the plan of the Hou refiners (hou2017 Algorithm 1). The
coarse-to-fine stages of pix2pixHD (:mod:`~histo_gan.training.coarse_to_fine`) are a plan too,
with lengths taken from the training budget.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DISCRIMINATOR",
    "GENERATOR",
    "GENERATOR_HARD",
    "GENERATOR_PRETRAIN",
    "SEGMENTER",
    "Phase",
    "PhasePlan",
    "RefinerPhases",
    "Rounds",
]

# The phases of the Hou refiners: what each training batch trains.
GENERATOR_PRETRAIN = "generator_pretrain"  # G on L_reg alone
GENERATOR = "generator"  # G on alpha L_reg + beta L_real
GENERATOR_HARD = "generator_hard"  # G with + gamma L_hard
DISCRIMINATOR = "discriminator"
SEGMENTER = "segmenter"


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


class PhasePlan:
    """Which phase each training batch belongs to, and the counter that says where we are.

    Args:
        stages: :class:`Phase` and :class:`Rounds` in order; at least one with steps.
    """

    def __init__(self, stages: list[Phase | Rounds]) -> None:
        self.stages = [s for s in stages if s.length > 0]
        if not self.stages:
            raise ValueError("a phase plan needs at least one stage with steps > 0")
        self.position = 0

    def _lookup(self, position: int) -> str:
        """The phase name of batch ``position``."""
        for index, stage in enumerate(self.stages):
            last = index == len(self.stages) - 1
            if position < stage.length or last:
                if isinstance(stage, Phase):
                    return stage.name
                offset = position % stage.cycle
                for phase in stage.phases:
                    if offset < phase.steps:
                        return phase.name
                    offset -= phase.steps
            position -= stage.length
        raise AssertionError("unreachable: the last stage absorbs every position")

    @property
    def phase(self) -> str:
        """The phase of the current training batch."""
        return self._lookup(self.position)

    def advance(self) -> None:
        """Move on by one training batch (call once per batch, after its steps)."""
        self.position += 1

    def names(self, count: int, start: int = 0) -> list[str]:
        """The phases of ``count`` batches from ``start`` (for logs and tests)."""
        return [self._lookup(p) for p in range(start, start + count)]

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


class RefinerPhases:
    """Algorithm 1 of hou2017 (also the training procedure of hou2019's released code), counted
    in training batches, each of which steps exactly one of G, D, R.

    Stages: G on ``L_reg`` for ``pretrain_generator_steps``; D for
    ``pretrain_discriminator_steps``; ``adversarial_rounds`` x (G on ``αL_reg + βL_real`` for
    ``generator_steps``, D for ``discriminator_steps``); R for ``pretrain_segmenter_steps``;
    ``joint_rounds`` x (G with ``+γL_hard`` for ``generator_steps``, D, R for
    ``segmenter_steps``); R alone for ``final_segmenter_steps``. After the last stage the
    plan stays there (the trainer's budget ends training; :attr:`total` batches run all).

    The papers give no counts; the defaults are the released code's (N_G, N_D, N_GD, N_R =
    1000, N_GDR = 10000, n_G 2, n_D 1, n_R 6, a final R phase of 1000): 97 000 batches.
    """

    def __init__(
        self,
        pretrain_generator_steps: int = 1000,
        pretrain_discriminator_steps: int = 1000,
        adversarial_rounds: int = 1000,
        pretrain_segmenter_steps: int = 1000,
        joint_rounds: int = 10000,
        generator_steps: int = 2,
        discriminator_steps: int = 1,
        segmenter_steps: int = 6,
        final_segmenter_steps: int = 1000,
    ) -> None:
        g, d, r = generator_steps, discriminator_steps, segmenter_steps
        joint = [Phase(GENERATOR_HARD, g), Phase(DISCRIMINATOR, d), Phase(SEGMENTER, r)]
        self.stages = [
            Phase(GENERATOR_PRETRAIN, pretrain_generator_steps),
            Phase(DISCRIMINATOR, pretrain_discriminator_steps),
            Rounds(adversarial_rounds, [Phase(GENERATOR, g), Phase(DISCRIMINATOR, d)]),
            Phase(SEGMENTER, pretrain_segmenter_steps),
            Rounds(joint_rounds, joint),
            Phase(SEGMENTER, final_segmenter_steps),
        ]

    @property
    def total(self) -> int:
        return sum(stage.length for stage in self.stages)

    def build(self) -> PhasePlan:
        return PhasePlan(self.stages)
