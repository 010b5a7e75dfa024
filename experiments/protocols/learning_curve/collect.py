"""The real-only segmenter's learning curve and its plateau budget, from the chunked runs.

    python experiments/protocols/learning_curve/collect.py \
        [--runs runs/protocols] [--out experiments/results/learning_curve]

Reads the validation metrics logged by every chunk (``<runs>/learning_curve_s<seed>/version_*/
metrics.csv``; a resumed chunk's folder continues the step count) and writes to ``--out``:

- ``curve.csv``: ``seed, step, aji, dice, pq`` per validation;
- ``budget.json``: :func:`histo_gan.metrics.plateau.plateau_budget` of the mean AJI curve over
  the seeds (and of each seed alone), with the network, patch size and batch it holds for;
- ``curve.png``: AJI and Dice against steps, per seed and mean, with the plateau and budget.

Seeds whose run has not reached the last evaluated step of the others still count at the
steps they share (the mean curve keeps common steps only); ``budget.json`` lists each seed's
last step, so an unfinished curve is visible as one.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import yaml

from histo_gan.metrics.plateau import mean_curve, plateau_budget
from histo_gan.runs import logged_curve

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "experiments" / "protocols" / "learning_curve" / "cpu.yaml"
METRICS = {"aji": "val/aji", "dice": "val/dice", "pq": "val/pq"}


def budget_record(steps, values) -> dict:
    result = plateau_budget(steps, values)
    return {
        "budget": result.budget,
        "plateau": round(result.plateau, 4),
        "flattened": result.flattened,
        "rise": round(result.rise, 4),
        "tolerance": result.tolerance,
        "smoothed": [round(v, 4) for v in result.smoothed],
    }


def plot(curves: dict[int, dict[int, dict]], steps, mean, record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("aji", "dice")):
        for seed, curve in sorted(curves.items()):
            xs = sorted(curve)
            axis.plot(
                xs, [curve[s][metric] for s in xs], alpha=0.5, marker=".", label=f"seed {seed}"
            )
        if metric == "aji":
            axis.plot(steps, mean, color="black", label="mean over seeds")
            axis.plot(steps, record["smoothed"], color="black", ls=":", label="smoothed mean")
            axis.axhline(
                record["plateau"], color="grey", ls="--", label=f"plateau {record['plateau']:.3f}"
            )
            axis.axvline(
                record["budget"], color="red", ls="--", label=f"budget {record['budget']} steps"
            )
        axis.set_xlabel("training steps (batch 8, 192 px)")
        axis.set_ylabel(f"validation {metric} (4 images)")
        axis.legend(fontsize=7)
    fig.suptitle("real-only U-Net (R18 depth 4), 15 labeled images")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "protocols")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "experiments" / "results" / "learning_curve"
    )
    args = parser.parse_args(argv)
    curves = {}
    for run in sorted(args.runs.glob("learning_curve_s*")):
        seed = int(re.fullmatch(r"learning_curve_s(\d+)", run.name).group(1))
        curve = logged_curve(run, METRICS)
        if curve:
            curves[seed] = curve
    if not curves:
        raise SystemExit(f"no learning_curve_s*/version_*/metrics.csv under {args.runs}")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "curve.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["seed", "step", *METRICS])
        for seed, curve in sorted(curves.items()):
            for step in sorted(curve):
                writer.writerow([seed, step, *(f"{curve[step][m]:.4f}" for m in METRICS)])
    steps, mean = mean_curve([{s: v["aji"] for s, v in c.items()} for c in curves.values()])
    record = budget_record(steps, mean)
    config = yaml.safe_load(CONFIG.read_text())
    network = config["model"]["init_args"]["network"]["init_args"]
    record.update(
        metric="val/aji (mean over seeds)",
        seeds=sorted(curves),
        last_step={str(seed): max(curve) for seed, curve in sorted(curves.items())},
        steps=steps,
        mean=[round(v, 4) for v in mean],
        per_seed={
            str(seed): {
                k: v
                for k, v in budget_record(sorted(c), [c[s]["aji"] for s in sorted(c)]).items()
                if k != "smoothed"
            }
            for seed, c in sorted(curves.items())
            if len(c) >= 6
        },
        network=f"SmpUnet {network['encoder_name']} depth {network['encoder_depth']}",
        patch_size=config["data"]["patch_size"],
        batch_size=config["data"]["batch_size"],
        config="experiments/protocols/learning_curve/cpu.yaml",
        command="python experiments/protocols/learning_curve/collect.py",
    )
    (args.out / "budget.json").write_text(json.dumps(record, indent=1) + "\n")
    plot(curves, steps, mean, record, args.out / "curve.png")
    print(
        json.dumps({k: record[k] for k in ("budget", "plateau", "flattened", "rise", "last_step")})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
