"""``histo-gan evaluate``: score predicted instance label maps against ground truth.

    histo-gan evaluate --pred runs/preds --gt data/instance_masks [--out results/]

Files are paired by stem (``TCGA-X.png`` <-> ``TCGA-X.tif``); label maps may be PNG/TIFF
(8-32 bit), ``.npy`` or ``.mat`` (``inst_map``). Prints a table per image and overall (the
per-image mean and the aggregate ratio of summed statistics) and writes
``metrics_per_image.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from histo_gan.metrics.instance import evaluate_pair
from histo_gan.metrics.summary import print_metric_table, summarise, write_results
from histo_gan.readers import LABEL_SUFFIXES, DataError, read_label_map

__all__ = ["evaluate_pairs", "main"]


def _label_files(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder does not exist")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in LABEL_SUFFIXES:
            continue
        if path.stem in files:
            raise DataError(
                f"{folder}: {files[path.stem].name} and {path.name} are both {what} maps for "
                f"{path.stem!r}; keep one of them"
            )
        files[path.stem] = path
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
