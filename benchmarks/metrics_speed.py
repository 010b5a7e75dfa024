"""All overlap metrics from one overlap table vs the per-object reference, on real data.

    python benchmarks/metrics_speed.py [--image TCGA-...] [--repeats 3]

Takes a 1000x1000 MoNuSeg label map from ../shared/data and a perturbed copy (every nucleus
eroded or dilated by 1 px, 10% dropped, a few shifted), then times, on the same inputs, the
project's overlap metrics (dice, dice2, dice_avg, aji, aji_plus, dq, sq, pq, f1, precision,
recall, object_dice) against the straightforward per-object implementation in
``tests/metrics_oracle.py``, checks that both give the same values, and prints the ratio.
Distance metrics are timed separately (the reference has no fast counterpart to compare).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from histo_gan.data.readers import read_label_map  # noqa: E402
from histo_gan.metrics.distance import hausdorff_distance, object_hausdorff  # noqa: E402
from histo_gan.metrics.instance import image_stats, object_dice_from_table, scores_from_stats  # noqa: E402
from histo_gan.metrics.overlap import overlap_table  # noqa: E402
from tests import metrics_oracle  # noqa: E402

MASKS = ROOT.parent / "shared" / "data" / "monuseg" / "train" / "instance_masks"


def perturb(label: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.unique(label)[1:]
    eroded = np.where(
        ndimage.grey_erosion(label, size=3) == ndimage.grey_dilation(label, size=3), label, 0
    )
    dilated = ndimage.grey_dilation(label, size=3)
    grow = np.isin(label, rng.choice(ids, len(ids) // 2, replace=False))
    out = np.where(grow, label, eroded)
    out = np.where((out == 0) & np.isin(dilated, ids[::2]), dilated, out)
    out[np.isin(out, rng.choice(ids, len(ids) // 10, replace=False))] = 0
    return np.roll(out, 1, axis=1)


def fast_overlap(gt, pred) -> dict:
    table = overlap_table(gt, pred)
    scores = scores_from_stats(image_stats(table))
    scores["object_dice"] = object_dice_from_table(table)
    return scores


def timed(fn, repeats):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--image", default=None, help="stem of the label map (default: ~600 nuclei)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not MASKS.is_dir():
        sys.exit(f"{MASKS}: MoNuSeg label maps not found")
    if args.image is None:
        counts = {
            p.stem: len(np.unique(read_label_map(p))) - 1 for p in sorted(MASKS.glob("*.png"))
        }
        args.image = min(counts, key=lambda stem: abs(counts[stem] - 600))
    gt = read_label_map(MASKS / f"{args.image}.png")
    pred = perturb(gt)
    print(f"{args.image}: {gt.shape[1]}x{gt.shape[0]}, {len(np.unique(gt)) - 1} nuclei, "
          f"{len(np.unique(pred)) - 1} predicted")  # fmt: skip
    fast_s, fast = timed(lambda: fast_overlap(gt, pred), args.repeats)
    slow_s, slow = timed(lambda: metrics_oracle.overlap_metrics(gt, pred), 1)
    worst = max(abs(fast[k] - slow[k]) for k in slow)
    print(f"overlap metrics ({len(slow)}), one table:   {fast_s * 1e3:9.1f} ms")
    print(f"overlap metrics, per-object reference: {slow_s * 1e3:9.1f} ms")
    print(f"speed-up: {slow_s / fast_s:.1f}x   (largest difference {worst:.1e})")
    hd_s, _ = timed(lambda: hausdorff_distance(gt, pred), args.repeats)
    obj_s, _ = timed(lambda: object_hausdorff(gt, pred), args.repeats)
    print(f"hausdorff + hd95: {hd_s * 1e3:.1f} ms; object hausdorff: {obj_s * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
