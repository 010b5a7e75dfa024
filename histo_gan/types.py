"""The data contracts of histo-gan, stated once.

Arrays on disk and in readers (numpy)
-------------------------------------
- RGB image: ``uint8`` array of shape ``(H, W, 3)``, values 0..255.
- Instance label map: ``int32`` array of shape ``(H, W)``; 0 is background, every positive
  value is one nucleus. Ids need not be contiguous; negative values are invalid.
- Type map (optional, CoNSeP-style): ``int32`` ``(H, W)``, 0 is background, 1..K are classes.

Tensors in batches (torch)
--------------------------
- ``image``: ``float32`` ``(B, 3, H, W)``, RGB, channel-first, values in [0, 1]. A module whose
  generator ends in ``tanh`` maps to [-1, 1] itself (see :func:`histo_gan.types.to_signed`).
- ``label``: ``int32`` ``(B, H, W)`` instance label maps as above.
- ``weight``: ``float32`` ``(B,)`` per-sample loss weight (1.0 for real data).
- ``is_synthetic``: ``bool`` ``(B,)``.
- ``image_id``: ``list[str]`` of length B; ``organ``: ``list[str]`` ("unknown" when not known).

Training batches (:class:`TrainBatch`) always carry ``image``, ``label``, ``weight``,
``is_synthetic``, ``image_id`` and ``organ``. Two optional streams are added when the
DataModule is configured for them:

- ``reference``: ``float32`` ``(B, 3, H, W)`` in [0, 1], a real patch from the same image or the
  same organ as the sample (the style reference of the Hou refiners).
- ``real``: ``float32`` ``(B, 3, H, W)`` in [0, 1], an unpaired real-tissue patch (the target
  domain of unpaired GANs), drawn independently of ``image``.
- ``real_reference``: ``float32`` ``(B, 3, H, W)`` in [0, 1], present when both streams above
  are: a second real patch from the same image or organ as ``real`` (the real pair <S', S> of
  the Hou refiners' pair discriminator).

The Hou refiners read a training batch through :class:`RefinerBatch` (images in [-1, 1]).

Evaluation batches (:class:`EvalBatch`) hold whole images, one per batch item, with
``image`` ``(1, 3, H, W)`` and ``label`` ``(1, H, W)``; modules predict them tile by tile with
:class:`histo_gan.inference.SlidingWindow` so that metrics always see full images. Under DDP a
process's shard is padded to equal length with items flagged ``is_padding`` (``bool`` ``(1,)``);
they are neither scored nor written.

Predictions (what ``predict_step`` returns and the prediction writers consume) come in two
kinds, chosen by the module's ``predictor``:

- :class:`SegmentationPrediction`: one whole image's instance label map (written by
  :class:`~histo_gan.callbacks.InstanceMapWriter`);
- :class:`SynthesisPrediction`: a batch of synthetic images with the exact label maps they were
  made from and optional importance weights (written by
  :class:`~histo_gan.callbacks.SyntheticExport`), produced by any :class:`Synthesizer`.

This module imports torch only for type checking: the numpy contracts (:class:`LabeledImage`,
the validators) serve torch-free code such as :mod:`histo_gan.synthesis`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # the contracts are torch-free at run time: synthesis imports them
    import torch

__all__ = [
    "EvalBatch",
    "LabeledImage",
    "RefinerBatch",
    "SegmentationPrediction",
    "SynthesisPrediction",
    "Synthesizer",
    "TrainBatch",
    "to_signed",
    "to_unit",
    "validate_image",
    "validate_label_map",
]

UNKNOWN_ORGAN = "unknown"


class TrainBatch(TypedDict, total=False):
    image: torch.Tensor  # float32 (B, 3, H, W) in [0, 1]
    label: torch.Tensor  # int32 (B, H, W) instance ids, 0 = background
    weight: torch.Tensor  # float32 (B,)
    is_synthetic: torch.Tensor  # bool (B,)
    image_id: list[str]
    organ: list[str]
    reference: torch.Tensor  # optional, float32 (B, 3, H, W) in [0, 1]
    real: torch.Tensor  # optional, float32 (B, 3, H, W) in [0, 1]
    real_reference: torch.Tensor  # optional (reference + real), float32 (B, 3, H, W) in [0, 1]


class _EvalBatchRequired(TypedDict):
    image: torch.Tensor  # float32 (1, 3, H, W) in [0, 1], a whole image
    image_id: list[str]
    organ: list[str]
    is_padding: torch.Tensor  # bool (1,): a DDP shard's filler item, never scored or written


class EvalBatch(_EvalBatchRequired, total=False):
    label: torch.Tensor  # int32 (1, H, W); absent for unlabeled images (predict)


class SegmentationPrediction(TypedDict):
    """One whole image segmented: ``instances`` is ``int32`` ``(H, W)`` (``None`` for padding)."""

    image_id: str
    instances: np.ndarray | None
    is_padding: bool


class _SynthesisPredictionRequired(TypedDict):
    image: torch.Tensor  # float32 (B, 3, H, W) in [0, 1], synthetic H&E
    label: torch.Tensor  # int32 (B, H, W), the exact label maps the images were made from
    image_id: list[str]  # source ids, B of them


class SynthesisPrediction(_SynthesisPredictionRequired, total=False):
    weight: torch.Tensor  # float32 (B,) per-sample importance weight (default 1)
    is_padding: torch.Tensor  # bool (B,): filler items of a DDP shard, not written


@runtime_checkable
class Synthesizer(Protocol):
    """Anything that turns label maps into synthetic H&E: labels in, images out.

    ``batch`` holds at least ``label`` (``int32`` ``(B, H, W)``) and ``image_id``; a method that
    needs more (the Hou refiners: the initial ``image`` and a ``reference`` patch) reads it from
    the batch. Returns a :class:`SynthesisPrediction` whose ``label`` is the input label map, so
    exported instances are exact.
    """

    def synthesize(self, batch: Mapping[str, Any]) -> SynthesisPrediction: ...


@dataclass
class RefinerBatch:
    """A training batch as the Hou refiners see it (images in [-1, 1]).

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
        """The view of a :class:`TrainBatch` with ``real`` (and ``reference`` for G and D)."""
        if "real" not in batch:
            raise ValueError(
                "the Hou refiners need real pairs <S', S>: set data.unpaired_real: true and "
                "data.reference: same_image (or same_organ)"
            )

        def signed(key):
            return to_signed(batch[key]) if key in batch else None

        image = batch["image"]
        synthetic = batch["is_synthetic"].float() if "is_synthetic" in batch else None
        synthetic = image.new_ones(len(image)) if synthetic is None else synthetic.to(image.device)
        weight = batch["weight"].float() if "weight" in batch else image.new_ones(len(image))
        return cls(
            to_signed(image),
            signed("reference"),
            batch["label"],
            synthetic,
            weight,
            signed("real"),
            signed("real_reference"),
        )

    def for_segmenter(self, refined: torch.Tensor) -> torch.Tensor:
        """R's input in [0, 1]: the refined patch for synthetic items, the patch itself for real."""
        mask = self.synthetic[:, None, None, None].bool()
        return to_unit(refined.where(mask, self.initial))


@dataclass
class LabeledImage:
    """One image as a reader returns it.

    Attributes:
        image: ``uint8`` ``(H, W, 3)`` RGB.
        label: ``int32`` ``(H, W)`` instance label map, or ``None`` for unlabeled images.
        image_id: stable identifier (the file stem for files on disk).
        organ: organ name, or ``"unknown"``.
        source: path of the file the image came from (for error messages and provenance).
        weight: per-sample loss weight (synthetic datasets may store importance weights).
        is_synthetic: whether the image was produced by this project.
        type_map: optional ``int32`` ``(H, W)`` class map.
        meta: free-form provenance (seed, source ids, ...).
    """

    image: np.ndarray
    label: np.ndarray | None
    image_id: str
    organ: str = UNKNOWN_ORGAN
    source: str = ""
    weight: float = 1.0
    is_synthetic: bool = False
    type_map: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_image(self.image, self.source or self.image_id)
        if self.label is not None:
            self.label = validate_label_map(self.label, self.source or self.image_id)
            if self.label.shape != self.image.shape[:2]:
                raise ValueError(
                    f"{self.source or self.image_id}: label map shape {self.label.shape} does not "
                    f"match image shape {self.image.shape[:2]}"
                )

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def validate_image(image: np.ndarray, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` unless ``image`` is ``uint8`` ``(H, W, 3)``."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{where}: image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{where}: image must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: image must be uint8, got {image.dtype}")


def validate_label_map(label: np.ndarray, where: str) -> np.ndarray:
    """Check an instance label map and return it as ``int32``.

    Raises ``ValueError`` naming ``where`` for non-2-D input, float or bool dtypes, negative ids,
    or ids that do not fit in ``int32``.
    """
    if not isinstance(label, np.ndarray):
        raise ValueError(f"{where}: label map must be a numpy array, got {type(label).__name__}")
    if label.ndim != 2:
        raise ValueError(f"{where}: label map must be 2-D (H, W), got shape {label.shape}")
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(
            f"{where}: label map must have an integer dtype (instance ids), got {label.dtype}"
        )
    if label.size:
        lo, hi = int(label.min()), int(label.max())
        if lo < 0:
            raise ValueError(f"{where}: label map has negative ids (min {lo})")
        if hi > np.iinfo(np.int32).max:
            raise ValueError(f"{where}: label map id {hi} does not fit in int32")
    return label.astype(np.int32, copy=False)


def to_signed(image: torch.Tensor) -> torch.Tensor:
    """Map an image in [0, 1] to [-1, 1] (for generators that end in ``tanh``)."""
    return image * 2.0 - 1.0


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """Map an image in [-1, 1] back to [0, 1], clamped."""
    return ((image + 1.0) * 0.5).clamp(0.0, 1.0)
