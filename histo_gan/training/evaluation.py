"""The two evaluation roles of a method, and the predict step they share.

Every method plays one role, declared by the mixin it inherits (see :mod:`histo_gan.modules.template`):

- :class:`SegmenterEvaluation`: the module segments real H&E. It declares the network with
  ``segmenter()`` (a callable, ``(N, 3, t, t)`` images in [0, 1] -> ``(N, C, t, t)``
  probabilities in the post-processor's channel convention); validation and test score whole
  held-out images tile by tile with the shared metrics (AJI, Dice, PQ, Hausdorff) through its
  :class:`WholeImageEvaluator`, and test prints the per-image table and writes
  ``<log_dir>/test_metrics_per_image.csv`` and ``test_metrics.json``.
- :class:`SynthesizerEvaluation`: the module makes images from label maps (a
  :class:`~histo_gan.types.Synthesizer`). Validation and test synthesize each held-out whole
  image from its label map and log ``{stage}/l1``, the mean absolute error in [0, 1] units
  against the module's ``heldout_target(batch)`` (the real image by default); the realism
  measures of the samples against held-out real tissue come from the
  :class:`~histo_gan.callbacks.realism_monitor.RealismMonitor` callback.

What ``predict`` does is the module's ``predictor``, chosen by configuration:
:class:`SegmentImages` (instance label maps of whole images) or :class:`SynthesizeImages`
(synthetic (label map, H&E) pairs for :class:`~histo_gan.callbacks.SyntheticExport`). A module
that both synthesizes and segments (the Hou refiners, CycleGAN) is evaluated as a segmenter and
exports pairs with ``SynthesizeImages``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from histo_gan.inference.tiling import SlidingWindow
from histo_gan.metrics import make_metric_collection
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.metrics.summary import print_metric_table, unflatten_summary, write_results
from histo_gan.types import EvalBatch, SegmentationPrediction, SynthesisPrediction, Synthesizer

__all__ = [
    "Predictor",
    "Segment",
    "SegmentImages",
    "SegmenterEvaluation",
    "SynthesizeImages",
    "SynthesizerEvaluation",
    "WholeImageEvaluator",
]

Segment = Callable[[torch.Tensor], torch.Tensor]
STAGES = ("val", "test")


def is_padding(batch: EvalBatch) -> bool:
    padding = batch.get("is_padding")
    return bool(padding is not None and padding.any())


def _gather(rows: list[dict]) -> list[dict]:
    """All processes' rows under DDP (each rank scored its share of the images)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return rows
    gathered: list[list[dict] | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, rows)
    merged = {row["image_id"]: row for part in gathered for row in (part or [])}
    return [merged[k] for k in sorted(merged)]


class WholeImageEvaluator(nn.Module):
    """Shared evaluation state: a metric collection per stage and the per-image test rows.

    Args:
        sliding_window: how whole images are tiled for the network.
        postprocess: probabilities ``(C, H, W)`` -> ``int32`` instance label map ``(H, W)``.
    """

    def __init__(
        self,
        sliding_window: SlidingWindow | None = None,
        postprocess: InstancePostprocessor | None = None,
    ) -> None:
        super().__init__()
        self.sliding_window = sliding_window or SlidingWindow()
        self.postprocess = postprocess or InstancePostprocessor()
        self.metrics = nn.ModuleDict({s: make_metric_collection(f"{s}/") for s in STAGES})
        self.image_keys: dict[str, list[tuple[str, str]]] = {s: [] for s in STAGES}
        self.rows: list[dict] = []

    @torch.no_grad()
    def instances(self, segment: Segment, image: torch.Tensor) -> np.ndarray:
        """Instance label map ``int32`` ``(H, W)`` of one whole image ``(1, 3, H, W)``."""
        probabilities = self.sliding_window(segment, image)
        return self.postprocess(probabilities[0].float().cpu().numpy())

    def update(self, stage: str, segment: Segment, batch: EvalBatch) -> np.ndarray | None:
        """Segment the batch's whole image, score it, and return the predicted label map.

        Padding items of a distributed shard add a placeholder that the metrics ignore (every
        process must still take part in the metric synchronisation).
        """
        if is_padding(batch):
            empty = torch.zeros(1, 1, 1, dtype=torch.int32)
            self.metrics[stage].update(empty, empty, valid=False)
            return None
        if "label" not in batch:
            raise ValueError(f"{stage} batch of {batch['image_id']} has no label map to score")
        prediction = self.instances(segment, batch["image"])
        truth = batch["label"][0].cpu()
        self.metrics[stage].update(torch.from_numpy(prediction)[None], truth[None])
        self.image_keys[stage].append((batch["image_id"][0], batch["organ"][0]))
        return prediction

    def compute(self, stage: str) -> dict[str, torch.Tensor]:
        """The stage's metrics over all its images (all processes); resets the state.

        The per-image scores of this process are kept in ``self.rows`` for :meth:`report`.
        """
        nuclei = self.metrics[stage]["nuclei"]
        self.rows = [
            {"image_id": image_id, "organ": organ, **scores}
            for (image_id, organ), scores in zip(self.image_keys[stage], nuclei.per_image())
        ]
        values = self.metrics[stage].compute()
        self.metrics[stage].reset()
        self.image_keys[stage] = []
        return {name: torch.as_tensor(value, dtype=torch.float32) for name, value in values.items()}

    def report(self, stage: str, trainer, values: dict[str, torch.Tensor]) -> None:
        """Print the per-image table and write it next to the run's logs (rank 0 only)."""
        rows, self.rows = _gather(self.rows), []
        log_dir = getattr(trainer, "log_dir", None)  # a collective under DDP: every rank asks
        if not rows or not getattr(trainer, "is_global_zero", True):
            return
        summary = unflatten_summary({k: float(v) for k, v in values.items()}, prefix=f"{stage}/")
        print_metric_table(rows, summary, title=f"{stage} metrics per image")
        if log_dir:
            write_results(rows, summary, Path(log_dir), prefix=f"{stage}_")


class Predictor:
    """What ``predict`` does with a batch: ``predictor(module, batch) -> payload``."""

    def __call__(self, module, batch: EvalBatch):
        raise NotImplementedError


class SegmentImages(Predictor):
    """Whole images -> :class:`~histo_gan.types.SegmentationPrediction` with the module's
    segmenter and evaluator (for :class:`~histo_gan.callbacks.InstanceMapWriter`)."""

    def __call__(self, module, batch: EvalBatch) -> SegmentationPrediction:
        image_id = batch["image_id"][0]
        if is_padding(batch):
            return {"image_id": image_id, "instances": None, "is_padding": True}
        segment = module.segmenter()
        if segment is None:
            raise ValueError(
                f"{type(module).__name__} has no segmenter: predict with SynthesizeImages"
            )
        instances = module.evaluator.instances(segment, batch["image"])
        return {"image_id": image_id, "instances": instances, "is_padding": False}


class SynthesizeImages(Predictor):
    """Label maps -> :class:`~histo_gan.types.SynthesisPrediction` through the module's
    :class:`~histo_gan.types.Synthesizer` (for :class:`~histo_gan.callbacks.SyntheticExport`)."""

    @torch.no_grad()
    def __call__(self, module, batch) -> SynthesisPrediction:
        if not isinstance(module, Synthesizer):
            raise ValueError(
                f"{type(module).__name__} is not a Synthesizer: predict with SegmentImages"
            )
        if "label" not in batch:
            raise ValueError(
                f"predict batch {batch['image_id']} has no label map to synthesize from"
            )
        prediction = module.synthesize(batch)
        if "is_padding" in batch:
            prediction["is_padding"] = batch["is_padding"].reshape(-1).bool()
        return prediction


class SegmenterEvaluation:
    """Validation, test and predict of a segmenter: the module has ``evaluator`` (a
    :class:`WholeImageEvaluator`), ``predictor`` and declares its network with ``segmenter()``."""

    evaluator: WholeImageEvaluator
    predictor: Predictor

    def segmenter(self) -> Segment:
        raise NotImplementedError(f"{type(self).__name__} must declare segmenter()")

    def validation_step(self, batch: EvalBatch, batch_idx: int) -> None:
        self.evaluator.update("val", self.segmenter(), batch)

    # The values are already reduced over processes by the metric state; sync_dist=True only
    # averages identical numbers (and tells Lightning they are global).
    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.evaluator.compute("val"), sync_dist=True)

    def test_step(self, batch: EvalBatch, batch_idx: int) -> None:
        self.evaluator.update("test", self.segmenter(), batch)

    def on_test_epoch_end(self) -> None:
        values = self.evaluator.compute("test")
        self.log_dict(values, sync_dist=True)
        self.evaluator.report("test", self.trainer, values)

    def predict_step(self, batch: EvalBatch, batch_idx: int):
        return self.predictor(self, batch)


class SynthesizerEvaluation:
    """Validation, test and predict of a synthesizer: the module defines ``synthesize(batch)``
    (:class:`~histo_gan.types.Synthesizer`) and has a ``predictor``.

    Each held-out whole image (``(1, 3, H, W)`` with its ``(1, H, W)`` label map) is synthesized
    from its label map; ``{stage}/l1`` is the mean absolute error between the synthetic image
    and :meth:`heldout_target`, both in [0, 1]. Padding items and unlabeled images are skipped.
    """

    predictor: Predictor

    def heldout_target(self, batch: EvalBatch) -> torch.Tensor:
        """What synthesizing the batch's label map should give, ``(1, 3, H, W)`` in [0, 1]:
        the real image itself (a method whose output is not H&E says what instead)."""
        return batch["image"]

    @torch.no_grad()
    def _log_heldout_l1(self, stage: str, batch: EvalBatch) -> None:
        if "label" not in batch or is_padding(batch):
            return
        synthetic = self.synthesize(batch)["image"].float()
        error = (synthetic - self.heldout_target(batch).float()).abs().mean()
        self.log(f"{stage}/l1", error, sync_dist=True, batch_size=1)

    def validation_step(self, batch: EvalBatch, batch_idx: int) -> None:
        self._log_heldout_l1("val", batch)

    def test_step(self, batch: EvalBatch, batch_idx: int) -> None:
        self._log_heldout_l1("test", batch)

    def predict_step(self, batch: EvalBatch, batch_idx: int):
        return self.predictor(self, batch)
