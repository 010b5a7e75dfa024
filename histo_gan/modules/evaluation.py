"""The one evaluation path of every module: whole image -> tiles -> probabilities -> instances -> metrics.

A module holds one :class:`WholeImageEvaluator` and calls ``update(stage, module, batch)`` from
its validation/test steps and ``compute(stage)`` at epoch end. The module's ``forward`` maps
``(N, 3, t, t)`` images in [0, 1] to ``(N, C, t, t)`` probabilities in the channel convention
of the post-processor. At test time the per-image scores are also kept, printed as a table and
written to ``<log_dir>/test_metrics_per_image.csv`` and ``test_metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from histo_gan.data.tiling import SlidingWindow
from histo_gan.metrics import make_metric_collection
from histo_gan.metrics.postprocess import InstancePostprocessor

__all__ = ["EvaluatesWholeImages", "WholeImageEvaluator"]


def _is_padding(batch: dict) -> bool:
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


STAGES = ("val", "test")


class WholeImageEvaluator(nn.Module):
    """Shared evaluation state: a metric collection per stage and the per-image test rows.

    Args:
        sliding_window: how whole images are tiled for the network.
        postprocess: probabilities ``(C, H, W)`` -> ``int32`` instance label map ``(H, W)``.
    """

    def __init__(self, sliding_window: SlidingWindow, postprocess: InstancePostprocessor) -> None:
        super().__init__()
        self.sliding_window, self.postprocess = sliding_window, postprocess
        self.metrics = nn.ModuleDict({s: make_metric_collection(f"{s}/") for s in STAGES})
        self.image_keys: dict[str, list[tuple[str, str]]] = {s: [] for s in STAGES}
        self.rows: list[dict] = []

    @torch.no_grad()
    def instances(self, module: nn.Module, image: torch.Tensor) -> np.ndarray:
        """Instance label map ``int32`` ``(H, W)`` of one whole image ``(1, 3, H, W)``."""
        probabilities = self.sliding_window(module, image)
        return self.postprocess(probabilities[0].float().cpu().numpy())

    def update(self, stage: str, module: nn.Module, batch: dict) -> np.ndarray | None:
        """Predict the batch's whole image, score it, and return the predicted label map.

        Padding items of a distributed shard (``is_padding``) are skipped.
        """
        if _is_padding(batch):
            empty = torch.zeros(1, 1, 1, dtype=torch.int32)
            self.metrics[stage].update(empty, empty, valid=False)
            return None
        if "label" not in batch:
            raise ValueError(f"{stage} batch of {batch['image_id']} has no label map to score")
        prediction = self.instances(module, batch["image"])
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

    def predict(self, module: nn.Module, batch: dict) -> dict:
        return {
            "image_id": batch["image_id"][0],
            "instances": self.instances(module, batch["image"]),
        }

    def report(self, stage: str, trainer, values: dict[str, torch.Tensor]) -> None:
        """Print the per-image table and write it next to the run's logs (rank 0 only)."""
        from histo_gan.evaluate import print_metric_table, write_results

        rows, self.rows = _gather(self.rows), []
        log_dir = getattr(trainer, "log_dir", None)  # a collective under DDP: every rank asks
        if not rows or not getattr(trainer, "is_global_zero", True):
            return
        prefix, aggregate = f"{stage}/", f"{stage}/aggregate/"
        summary = {
            "num_images": len(rows),
            "per_image": {
                k[len(prefix) :]: float(v)
                for k, v in values.items()
                if k.startswith(prefix)
                and not k.startswith(aggregate)
                and k != f"{prefix}num_images"
            },
            "aggregate": {
                k[len(aggregate) :]: float(v) for k, v in values.items() if k.startswith(aggregate)
            },
        }
        print_metric_table(rows, summary, title=f"{stage} metrics per image")
        if log_dir:
            write_results(rows, summary, Path(log_dir), prefix=f"{stage}_")


class EvaluatesWholeImages:
    """Validation, test and predict hooks for a LightningModule that has ``self.evaluator``.

    Mixed into each method's module so that every method evaluates in exactly the same way;
    the module's ``forward`` must map images in [0, 1] to post-processor probabilities.
    """

    evaluator: WholeImageEvaluator

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluator.update("val", self, batch)

    # The values are already reduced over processes by the metric state; sync_dist=True only
    # averages identical numbers (and tells Lightning they are global).
    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.evaluator.compute("val"), sync_dist=True)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluator.update("test", self, batch)

    def on_test_epoch_end(self) -> None:
        values = self.evaluator.compute("test")
        self.log_dict(values, sync_dist=True)
        self.evaluator.report("test", self.trainer, values)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return self.evaluator.predict(self, batch)
