"""``histo-gan evaluate``: score predicted instance label maps against ground truth.

    histo-gan evaluate --pred runs/preds --gt data/instance_masks [--out results/]

Files are paired by stem (``TCGA-X.png`` <-> ``TCGA-X.tif``); label maps may be PNG/TIFF
(8-32 bit), ``.npy`` or ``.mat`` (``inst_map``). Prints a table per image and overall (the
per-image mean and the aggregate ratio of summed statistics) and writes
``metrics_per_image.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from histo_gan.data.readers import LABEL_SUFFIXES, DataError, read_label_map
from histo_gan.metrics.instance import AGGREGATABLE, ImageStats, evaluate_pair, scores_from_stats

__all__ = ["evaluate_pairs", "main", "print_metric_table", "summarise", "write_results"]

# The columns of the printed table (the CSV and JSON files hold every metric).
TABLE_COLUMNS = ("dice", "dice2", "aji", "aji_plus", "pq", "f1", "hausdorff", "object_dice")


def _label_files(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder does not exist")
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in LABEL_SUFFIXES}
    if not files:
        raise DataError(f"{folder}: no label maps found ({', '.join(LABEL_SUFFIXES)})")
    return files


def pair_folders(pred_dir: Path, gt_dir: Path) -> list[tuple[str, Path, Path]]:
    """``(stem, pred_file, gt_file)`` for every stem in both folders; errors on unmatched files."""
    preds, gts = _label_files(pred_dir, "prediction"), _label_files(gt_dir, "ground-truth")
    missing_gt = sorted(set(preds) - set(gts))
    missing_pred = sorted(set(gts) - set(preds))
    if missing_gt:
        raise DataError(f"{gt_dir}: no ground truth for predictions {missing_gt[:5]}")
    if missing_pred:
        raise DataError(f"{pred_dir}: no prediction for ground-truth maps {missing_pred[:5]}")
    return [(stem, preds[stem], gts[stem]) for stem in sorted(preds)]


def evaluate_pairs(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> tuple[list[dict], dict]:
    """Score ``(image_id, gt, pred)`` triples; returns per-image rows and the summary."""
    rows, stats = [], []
    for image_id, gt, pred in pairs:
        if gt.shape != pred.shape:
            raise DataError(
                f"{image_id}: prediction is {pred.shape} but ground truth is {gt.shape}"
            )
        scores, image_stats = evaluate_pair(gt, pred)
        rows.append({"image_id": image_id, **scores})
        stats.append(image_stats)
    return rows, summarise(rows, stats)


def summarise(rows: list[dict], stats: list[ImageStats] | None = None) -> dict:
    """``{"per_image": means over rows, "aggregate": ratios of summed stats, "num_images"}``."""
    metric_names = [k for k in rows[0] if isinstance(rows[0][k], float)] if rows else []
    summary = {
        "num_images": len(rows),
        "per_image": {k: float(np.mean([r[k] for r in rows])) for k in metric_names},
    }
    if stats:
        total = sum(stats[1:], stats[0])
        summary["aggregate"] = {
            k: v for k, v in scores_from_stats(total).items() if k in AGGREGATABLE
        }
    return summary


def print_metric_table(rows: list[dict], summary: dict, title: str = "metrics per image") -> None:
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


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


def write_results(rows: list[dict], summary: dict, out_dir: Path, prefix: str = "") -> None:
    """Write ``<prefix>metrics_per_image.csv`` and ``<prefix>metrics.json`` atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _atomic_write(out_dir / f"{prefix}metrics_per_image.csv", buffer.getvalue())
    _atomic_write(out_dir / f"{prefix}metrics.json", json.dumps(summary, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="histo-gan evaluate", description="Score predicted instance label maps."
    )
    parser.add_argument("--pred", type=Path, required=True, help="folder of predicted label maps")
    parser.add_argument("--gt", type=Path, required=True, help="folder of ground-truth label maps")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: --pred)")
    args = parser.parse_args(argv)
    from rich.progress import track

    pairs = pair_folders(args.pred, args.gt)

    def load():
        for stem, pred_path, gt_path in track(pairs, description="scoring", transient=True):
            yield stem, read_label_map(gt_path), read_label_map(pred_path)

    rows, summary = evaluate_pairs(load())
    print_metric_table(rows, summary)
    out = args.out or args.pred
    write_results(rows, summary, out)
    print(f"wrote {out / 'metrics_per_image.csv'} and {out / 'metrics.json'}")
    return 0
