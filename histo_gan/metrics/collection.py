"""torchmetrics wrappers: the metric state every module logs, DDP-safe, one pass, two aggregations.

:class:`NucleusMetrics` keeps, per image, the sufficient statistics of
:class:`~histo_gan.metrics.instance.ImageStats` and the per-image scores. ``compute()`` returns

- ``<name>``: the **per-image** mean (how the papers report AJI, Dice and aHD), and
- ``aggregate/<name>``: the **aggregate** ratio of the statistics summed over all images
  (for the ratio scores only: dice, dice2, dice_avg, aji, aji_plus, dq, sq, pq, f1,
  precision, recall),

plus ``num_images``. States are concatenated across processes (``dist_reduce_fx="cat"``), so
a DDP run reports exactly what one process would.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric, MetricCollection

from histo_gan.metrics.instance import AGGREGATABLE, ImageStats, evaluate_pair
from histo_gan.metrics.summary import flatten_summary, summarise

__all__ = ["PER_IMAGE_METRICS", "NucleusMetrics", "make_metric_collection"]

PER_IMAGE_METRICS = (
    *AGGREGATABLE,
    "object_dice",
    "hausdorff",
    "hd95",
    "object_hausdorff",
)
_N_STATS = len(ImageStats().as_array())


class NucleusMetrics(Metric):
    """Every nucleus-segmentation metric of a set of images.

    ``update(pred, gt)`` takes integer instance label maps ``(H, W)`` or ``(B, H, W)`` (numpy
    or torch, any device). See the module docstring for the names ``compute()`` returns.
    """

    full_state_update = False
    higher_is_better = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("stats", default=[], dist_reduce_fx="cat")

    def update(self, pred, gt, valid: bool = True) -> None:
        """Score each (pred, gt) pair. ``valid=False`` adds placeholder rows that ``compute``
        ignores: the padding items of a distributed shard still give every process a state to
        synchronise."""
        pred_batch, gt_batch = _batched(pred, "pred"), _batched(gt, "gt")
        if len(pred_batch) != len(gt_batch):
            raise ValueError(f"pred has {len(pred_batch)} maps but gt has {len(gt_batch)}")
        for p, g in zip(pred_batch, gt_batch):
            if valid:
                scores, stats = evaluate_pair(g, p)
                row = [scores[n] for n in PER_IMAGE_METRICS] + [1.0]
                stats_row = torch.from_numpy(stats.as_array())
            else:
                row, stats_row = [0.0] * len(PER_IMAGE_METRICS) + [0.0], torch.zeros(_N_STATS)
            self.scores.append(torch.tensor(row, dtype=torch.float64)[None].to(self.device))
            self.stats.append(stats_row.double()[None].to(self.device))

    def _valid_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        scores = _as_matrix(self.scores, len(PER_IMAGE_METRICS) + 1)
        stats = _as_matrix(self.stats, _N_STATS)
        keep = scores[:, -1] > 0.5
        return scores[keep, :-1], stats[keep]

    def summary(self) -> dict:
        """This state's summary (see :func:`histo_gan.metrics.summary.summarise`)."""
        scores, stats = self._valid_rows()
        rows = [dict(zip(PER_IMAGE_METRICS, row.tolist())) for row in scores]
        image_stats = [ImageStats.from_array(row.cpu().numpy()) for row in stats]
        return summarise(rows, image_stats)

    def compute(self) -> dict[str, torch.Tensor]:
        flat = flatten_summary(self.summary())
        if flat["num_images"] == 0:
            return {"num_images": torch.tensor(0.0)}
        return {name: torch.tensor(value, dtype=torch.float32) for name, value in flat.items()}

    def per_image(self) -> list[dict[str, float]]:
        """The per-image scores, in update order (of this process)."""
        scores, _ = self._valid_rows()
        return [dict(zip(PER_IMAGE_METRICS, row.tolist())) for row in scores]


def _as_matrix(state, width: int) -> torch.Tensor:
    if isinstance(state, torch.Tensor):  # after a DDP sync the list is concatenated
        return state.reshape(-1, width).double()
    if not state:
        return torch.zeros(0, width, dtype=torch.float64)
    return torch.cat(state).double()


def _batched(label, name: str) -> list:
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu()
        if label.ndim == 2:
            return [label]
        if label.ndim == 3:
            return list(label)
    else:
        label = np.asarray(label)
        if label.ndim == 2:
            return [label]
        if label.ndim == 3:
            return list(label)
    raise ValueError(
        f"{name}: expected (H, W) or (B, H, W) label maps, got shape {tuple(label.shape)}"
    )


def make_metric_collection(prefix: str = "val/") -> MetricCollection:
    """The metric collection every module uses: names like ``val/aji``, ``val/aggregate/aji``."""
    return MetricCollection({"nuclei": NucleusMetrics()}, prefix=prefix, compute_groups=False)
