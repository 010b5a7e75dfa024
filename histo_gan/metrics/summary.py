"""Per-image metric rows -> one summary, a printed table and result files.

The one implementation used by ``histo-gan evaluate``, by :class:`NucleusMetrics` and by the
modules' test reports. A summary is::

    {"num_images": N,
     "per_image": {metric: mean over the images},          # how the papers report
     "aggregate": {metric: ratio of the summed statistics}} # only with statistics

Rows are ``{"image_id": str, [other str columns], metric: float, ...}``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from histo_gan.files import write_text_atomic
from histo_gan.metrics.instance import AGGREGATABLE, ImageStats, scores_from_stats

__all__ = [
    "TABLE_COLUMNS",
    "flatten_summary",
    "print_metric_table",
    "summarise",
    "unflatten_summary",
    "write_results",
]

# The columns of the printed table (the CSV and JSON files hold every metric).
TABLE_COLUMNS = ("dice", "dice2", "aji", "aji_plus", "pq", "f1", "hausdorff", "object_dice")


def summarise(rows: Sequence[dict], stats: Sequence[ImageStats] | None = None) -> dict:
    """The summary of per-image ``rows`` (and their :class:`ImageStats`, for the aggregate)."""
    metric_names = [k for k, v in rows[0].items() if isinstance(v, float)] if rows else []
    summary: dict = {
        "num_images": len(rows),
        "per_image": {k: float(np.mean([r[k] for r in rows])) for k in metric_names},
    }
    if stats:
        total = sum(stats[1:], stats[0])
        summary["aggregate"] = {
            k: float(v) for k, v in scores_from_stats(total).items() if k in AGGREGATABLE
        }
    return summary


def flatten_summary(summary: dict) -> dict[str, float]:
    """``{metric: per-image mean, "aggregate/<metric>": ratio, "num_images": N}`` (for logging)."""
    flat = dict(summary.get("per_image", {}))
    flat.update({f"aggregate/{k}": v for k, v in summary.get("aggregate", {}).items()})
    flat["num_images"] = float(summary.get("num_images", 0))
    return flat


def print_metric_table(
    rows: Sequence[dict], summary: dict, title: str = "metrics per image"
) -> None:
    """A rich table: one row per image, then the per-image mean and the aggregate row."""
    from rich.console import Console
    from rich.table import Table

    columns = [c for c in TABLE_COLUMNS if rows and c in rows[0]]
    table = Table(title=title, caption="all metrics: see the CSV/JSON files")
    table.add_column("image")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["image_id"]), *(f"{row[c]:.4f}" for c in columns))
    table.add_section()
    mean = summary.get("per_image", {})
    table.add_row("mean (per image)", *(f"{mean[c]:.4f}" for c in columns), style="bold")
    if "aggregate" in summary:
        agg = summary["aggregate"]
        table.add_row(
            "aggregate", *(f"{agg[c]:.4f}" if c in agg else "" for c in columns), style="bold"
        )
    Console(width=max(Console().width, 132)).print(table)


def write_results(rows: Sequence[dict], summary: dict, out_dir: Path, prefix: str = "") -> None:
    """Write ``<prefix>metrics_per_image.csv`` and ``<prefix>metrics.json`` atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text_atomic(out_dir / f"{prefix}metrics_per_image.csv", buffer.getvalue())
    write_text_atomic(out_dir / f"{prefix}metrics.json", json.dumps(summary, indent=2))


def unflatten_summary(values: dict[str, float], prefix: str = "") -> dict:
    """The inverse of :func:`flatten_summary` for logged names ``<prefix><metric>``."""
    aggregate = f"{prefix}aggregate/"
    summary: dict = {"num_images": int(values.get(f"{prefix}num_images", 0))}
    summary["per_image"] = {
        k[len(prefix) :]: float(v)
        for k, v in values.items()
        if k.startswith(prefix) and not k.startswith(aggregate) and k != f"{prefix}num_images"
    }
    summary["aggregate"] = {
        k[len(aggregate) :]: float(v) for k, v in values.items() if k.startswith(aggregate)
    }
    return summary
