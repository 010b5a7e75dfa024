"""What the two Hou refiner modules share: the batch view, Algorithm 1, the history buffer, the
S+U losses and the export and sample-grid helpers.

Loss scale. The papers' weights (alpha, beta, gamma, lambda1, lambda2) were tuned in the
authors' released code, which *sums* every term over pixels or discriminator locations. The
helpers here keep that scale: each term is summed per sample and averaged over the batch
(``L_reg`` over pixels and channels, ``L_real`` and ``L_D`` over D's locations, ``L_hard``
as the per-pixel segmentation loss times the patch area), so the paper weights mean what they
meant there. ``L_real`` is the non-saturating form ``-log D(X, S)`` (released code; the papers
write ``log(1 - D)``).

Batch norm. D is trained on one batch of real and fake pairs together, and used in eval mode
(running statistics) wherever it judges refined patches for someone else (G's ``L_real``,
importance weights, export), so that a patch's score does not depend on the other patches of
its batch and D's statistics are those of its own training batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from histo_gan.losses import refiner_regularization
from histo_gan.modules.phases import Phase, PhaseSchedule, Rounds
from histo_gan.modules.targets import instance_boundaries
from histo_gan.types import to_signed, to_unit

__all__ = [
    "DISCRIMINATOR",
    "GENERATOR",
    "GENERATOR_HARD",
    "GENERATOR_PRETRAIN",
    "SEGMENTER",
    "RefinedHistory",
    "RefinerBatch",
    "RefinerSchedule",
    "discriminator_loss",
    "eval_mode",
    "masked_mean",
    "outline",
    "discriminator_objective",
    "export_pair",
    "generator_objective",
    "realism_loss",
    "sample_rows",
]

GENERATOR_PRETRAIN, DISCRIMINATOR, GENERATOR, SEGMENTER, GENERATOR_HARD = (
    "generator_pretrain", "discriminator", "generator", "segmenter", "generator_hard",
)  # fmt: skip


class RefinerSchedule:
    """Algorithm 1 of hou2017 (also the training procedure of hou2019's released code), counted
    in training batches, each of which steps exactly one of G, D, R.

    Stages: G on ``L_reg`` for ``pretrain_generator_steps``; D for
    ``pretrain_discriminator_steps``; ``adversarial_rounds`` x (G on ``αL_reg + βL_real`` for
    ``generator_steps``, D for ``discriminator_steps``); R for ``pretrain_segmenter_steps``;
    ``joint_rounds`` x (G with ``+γL_hard`` for ``generator_steps``, D, R for
    ``segmenter_steps``); R alone for ``final_segmenter_steps``. After the last stage the
    schedule stays there (the trainer's budget ends training; :attr:`total` batches run all).

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
        self.stages = [
            Phase(GENERATOR_PRETRAIN, pretrain_generator_steps),
            Phase(DISCRIMINATOR, pretrain_discriminator_steps),
            Rounds(adversarial_rounds, [Phase(GENERATOR, g), Phase(DISCRIMINATOR, d)]),
            Phase(SEGMENTER, pretrain_segmenter_steps),
            Rounds(
                joint_rounds,
                [Phase(GENERATOR_HARD, g), Phase(DISCRIMINATOR, d), Phase(SEGMENTER, r)],
            ),  # fmt: skip
            Phase(SEGMENTER, final_segmenter_steps),
        ]

    @property
    def total(self) -> int:
        return sum(stage.length for stage in self.stages)

    def build(self) -> PhaseSchedule:
        return PhaseSchedule(self.stages)


@dataclass
class RefinerBatch:
    """A training batch as the refiners see it (images in [-1, 1]).

    ``initial`` ``(B, 3, H, W)`` is the patch to refine; ``reference`` its real style patch S
    (``None`` without one); ``label`` ``int32`` ``(B, H, W)``; ``synthetic`` ``float32`` ``(B,)``
    is 1 for synthetic items (refined, judged, importance-weighted) and 0 for real labeled items
    (``synthetic_ratio < 1``: R trains on them as they are); ``weight`` the batch's ``(B,)``
    weights; ``real``/``real_reference`` the real pair <S', S> of D.
    """

    initial: torch.Tensor
    reference: torch.Tensor | None
    label: torch.Tensor
    synthetic: torch.Tensor
    weight: torch.Tensor
    real: torch.Tensor
    real_reference: torch.Tensor | None

    @classmethod
    def from_batch(cls, batch: Mapping) -> RefinerBatch:
        if "real" not in batch:
            raise ValueError(
                "the Hou refiners need real pairs <S', S>: set data.unpaired_real: true and "
                "data.reference: same_image (or same_organ)"
            )

        def signed(key):
            return to_signed(batch[key]) if key in batch else None

        image = batch["image"]
        synthetic = batch.get("is_synthetic", torch.ones(len(image), dtype=torch.bool))
        weight = batch.get("weight", torch.ones(len(image), device=image.device))
        return cls(to_signed(image), signed("reference"), batch["label"],
                   synthetic.to(image.device, torch.float32), weight.float(), signed("real"),
                   signed("real_reference"))  # fmt: skip

    def for_segmenter(self, refined: torch.Tensor) -> torch.Tensor:
        """R's input in [0, 1]: the refined patch for synthetic items, the patch itself for real."""
        mask = self.synthetic[:, None, None, None].bool()
        return to_unit(torch.where(mask, refined, self.initial))


def masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(w * v) / max(sum(w), 1)``: a batch mean over the weighted (e.g. synthetic) items.

    Items with weight 0 still take part in the graph, so every process of a DDP run does the
    same backward whatever its mix of items.
    """
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def realism_loss(logits: torch.Tensor) -> torch.Tensor:
    """G's ``L_real`` per sample: ``-log D`` summed over D's locations, ``(B,)``."""
    return F.softplus(-logits.float()).flatten(1).sum(dim=1)


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, fake_weight: torch.Tensor
) -> torch.Tensor:
    """``L_D = -log D(S', S) - log(1 - D(X, S))``, summed over locations, batch means
    (fake pairs weighted by ``fake_weight`` ``(B_fake,)``, 0 for non-synthetic items)."""
    real = F.softplus(-real_logits.float()).flatten(1).sum(dim=1).mean()
    fake = F.softplus(fake_logits.float()).flatten(1).sum(dim=1)
    return real + masked_mean(fake, fake_weight)


@contextmanager
def eval_mode(network: nn.Module) -> Iterator[nn.Module]:
    """Run ``network`` in eval mode (batch norm on running statistics), then restore its mode."""
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)


class RefinedHistory:
    """The S+U history buffer: up to ``capacity`` past refined samples (image, label, reference).

    ``sample(n)`` draws ``n`` stored samples uniformly; ``push`` appends new ones until full,
    then overwrites random stored ones (the released code's replacement). Draws use the
    buffer's own generator (not the global RNG); the state (samples, count, generator) is saved
    in checkpoints through :meth:`state_dict`. Tensors are stored detached on the device they
    arrive on; a restored buffer is moved to the device of the next push or sample.

    Under DDP each process keeps its own buffer, seeded alike (same draws on every process);
    a checkpoint holds the buffer of process 0, which every process restores.
    """

    def __init__(self, capacity: int = 1000, seed: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"history capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.stored: dict[str, torch.Tensor] = {}
        self.count = 0
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.count

    def _to(self, device: torch.device) -> None:
        self.stored = {k: v.to(device) for k, v in self.stored.items()}

    def push(self, **samples: torch.Tensor | None) -> None:
        """Store ``(B, ...)`` tensors given by name (``None`` values are left out)."""
        samples = {k: v.detach()[-self.capacity :] for k, v in samples.items() if v is not None}
        n = len(next(iter(samples.values())))
        if self.capacity == 0 or n == 0:
            return
        if not self.stored:
            self.stored = {
                k: v.new_zeros((self.capacity, *v.shape[1:])) for k, v in samples.items()
            }
        self._to(next(iter(samples.values())).device)
        free = min(self.capacity - self.count, n)
        slots = torch.arange(self.count, self.count + free)
        if n > free:  # full: overwrite distinct random slots
            replaced = torch.randperm(self.count, generator=self.generator)[: n - free]
            slots = torch.cat([slots, replaced])
        for key, value in samples.items():
            self.stored[key][slots.to(value.device)] = value
        self.count += free

    def sample(self, n: int, device: torch.device) -> dict[str, torch.Tensor] | None:
        """``n`` stored samples by name, or ``None`` while fewer than ``n`` are stored."""
        if n <= 0 or self.count < n:
            return None
        self._to(device)
        index = torch.randint(self.count, (n,), generator=self.generator).to(device)
        return {k: v[index] for k, v in self.stored.items()}

    def state_dict(self) -> dict:
        stored = {k: v[: self.count].cpu() for k, v in self.stored.items()}
        return {"capacity": self.capacity, "count": self.count, "stored": stored,
                "generator": self.generator.get_state()}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.capacity, self.count = int(state["capacity"]), int(state["count"])
        self.stored = {}
        for key, value in state["stored"].items():
            self.stored[key] = value.new_zeros((self.capacity, *value.shape[1:]))
            self.stored[key][: self.count] = value
        self.generator.set_state(state["generator"])


def outline(image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """``image`` ``(B, 3, H, W)`` in [0, 1] with the instance boundaries of ``label`` in green."""
    boundary = instance_boundaries(label.long(), 1)[:, None]
    green = torch.tensor([0.0, 1.0, 0.0], device=image.device)[None, :, None, None]
    return torch.where(boundary, green.expand_as(image), image)


def _cat(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return None if a is None or b is None else torch.cat([a, b])


def generator_objective(
    refined: torch.Tensor,
    data: RefinerBatch,
    D: nn.Module,
    R: nn.Module,
    phase: str,
    weights: Mapping[str, float],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss of the phase and its terms, over the synthetic items.

    ``generator_pretrain``: ``L_reg`` alone (Algorithm 1, line 2); ``generator``:
    ``αL_reg + βL_real``; ``generator_hard``: ``+ γL_hard`` with ``L_hard = -L_R`` of R
    (a :class:`~histo_gan.modules.SegmentationHead`) on the refined patch and its initial mask.
    ``weights`` holds ``alpha, beta, gamma, lambda_l1, lambda_l2``.
    """
    regularization = refiner_regularization(
        refined, data.initial, weights["lambda_l1"], weights["lambda_l2"], reduction="none"
    )
    terms = {"reg": masked_mean(regularization, data.synthetic)}
    if phase == GENERATOR_PRETRAIN:
        return terms["reg"], terms
    loss = weights["alpha"] * terms["reg"]
    with eval_mode(D):
        terms["real"] = masked_mean(realism_loss(D(refined, data.reference)), data.synthetic)
    loss = loss + weights["beta"] * terms["real"]
    if phase == GENERATOR_HARD and weights["gamma"] > 0:
        area = refined.shape[-1] * refined.shape[-2]
        segmentation = R.per_sample_loss(to_unit(refined), data.label) * area
        terms["hard"] = -masked_mean(segmentation, data.synthetic)
        loss = loss + weights["gamma"] * terms["hard"]
    return loss, terms


def discriminator_objective(
    refined: torch.Tensor, data: RefinerBatch, D: nn.Module, history: RefinedHistory
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_D`` on one batch of real pairs <S', S> and fake pairs <X, S>, half of the fakes from
    ``history`` once it holds enough (S+U); the fresh synthetic items then join the history.
    Also returns D's accuracy on the batch's real and fake pairs (threshold 0.5)."""
    refined = refined.detach()
    fake, fake_reference, fake_weight = refined, data.reference, data.synthetic
    past = history.sample(len(refined) // 2, refined.device)
    if past is not None:
        keep = len(refined) - len(past["image"])
        fake = torch.cat([refined[:keep], past["image"]])
        fake_reference = _cat(None if fake_reference is None else fake_reference[:keep],
                              past.get("reference"))  # fmt: skip
        fake_weight = torch.cat([data.synthetic[:keep], torch.ones_like(data.synthetic[keep:])])
    chosen = data.synthetic.bool()
    history.push(image=refined[chosen], label=data.label[chosen],
                 reference=None if data.reference is None else data.reference[chosen])  # fmt: skip
    n_real = len(data.real)
    logits = D(torch.cat([data.real, fake]), _cat(data.real_reference, fake_reference))
    loss = discriminator_loss(logits[:n_real], logits[n_real:], fake_weight)
    with torch.no_grad():
        p = torch.sigmoid(logits.float()).flatten(1).mean(1)
        accuracy_real = (p[:n_real] > 0.5).float().mean()
        accuracy_fake = masked_mean((p[n_real:] <= 0.5).float(), fake_weight)
    return loss, {"accuracy_real": accuracy_real, "accuracy_fake": accuracy_fake}


def export_pair(G: nn.Module, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
    """``(refined, reference)`` in [-1, 1] for a predict batch: the batch's ``image`` refined
    in the style of its ``reference``. Predict batches of a synthetic dataset carry no
    reference; then the initial patch is its own reference (its background is real tissue of
    the image the reference would be drawn from, so its stain statistics are the nearest
    stand-in at hand)."""
    initial = to_signed(batch["image"])
    reference = to_signed(batch["reference"]) if "reference" in batch else initial
    return G(initial, reference), reference


@torch.no_grad()
def sample_rows(G: nn.Module, batch: Mapping) -> dict[str, torch.Tensor]:
    """Sample-grid rows: initial | refined | reference | refined with the mask outline."""
    refined, reference = export_pair(G, batch)
    refined = to_unit(refined)
    return {"initial": batch["image"], "refined": refined, "reference": to_unit(reference),
            "mask outline": outline(refined, batch["label"])}  # fmt: skip
