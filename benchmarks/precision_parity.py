"""Does the fast default learn what fp32 learns? The real-only CPU protocol, 300 steps, per seed.

    python benchmarks/precision_parity.py [--steps 300] [--seeds 0 1] \
        [--out benchmarks/results/precision_parity.md]

Trains the segmenter of the converged comparisons (``experiments/protocols/converged/cpu.yaml``:
U-Net R18 depth 4, 192-px patches, batch 8, all 15 training images, Adam with the rate
annealed to 0 by a cosine) for ``--steps`` steps, in 15 epochs so that the cosine ends at the
last step, from each seed (weights and patches), once in ``32-true`` with contiguous networks
and once in the fast default (``trainer.precision: null``, channels-last where preferred),
each in its own ``histo-gan fit`` process with one thread, then validates on the split's 4
validation images. The annealed rate makes the endpoint a property of the run rather than of
the step it stops at (at a constant rate consecutive validations differ by up to 0.1 AJI).

Prints validation AJI and Dice of every run, the fast - fp32 difference per seed and its mean
over seeds (goal: |mean| within 0.02 for both), the spread between seeds of one precision
(the noise a difference must be read against) and the wall time of each fit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "experiments/protocols/converged/cpu.yaml"
ARMS = {"fp32": ["--trainer.precision=32-true", "--channels_last=false"], "fast default": []}
EPOCHS = 15
GOAL = 0.02


def fit(arm: list[str], steps: int, seed: int, root: Path, name: str) -> tuple[dict, float]:
    summary = root / f"{name}.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", HISTO_GAN_SUMMARY=str(summary))
    env.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    steps_per_epoch = steps // EPOCHS
    command = [
        sys.executable, "-m", "histo_gan.cli", "fit", "--config", CONFIG, "--name", name,
        f"--trainer.default_root_dir={root}", f"--trainer.max_steps={steps_per_epoch * EPOCHS}",
        f"--trainer.check_val_every_n_epoch={EPOCHS}",
        f"--data.patches_per_epoch={8 * steps_per_epoch}",
        f"--model.init_args.lr_scheduler.init_args.T_max={EPOCHS}",
        "--trainer.logger=false", "--trainer.enable_progress_bar=false",
        f"--seed_everything={seed}", *arm,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(summary.read_text()), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (Markdown)")
    args = parser.parse_args(argv)
    results: dict[tuple[str, int], tuple[dict, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for label, arm in ARMS.items():
                name = f"{label.replace(' ', '_')}_s{seed}"
                results[label, seed] = fit(arm, args.steps, seed, Path(tmp), name)
                print(f"{label}, seed {seed}: {results[label, seed][1]:.0f} s", flush=True)
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        f"`python benchmarks/precision_parity.py --steps {args.steps} --seeds "
        f"{' '.join(map(str, args.seeds))}` ({CONFIG}, cosine over {EPOCHS} epochs, seeds "
        f"{seeds}, one thread each; load average {os.getloadavg()[0]:.2f} at the end)",
        "",
        "| arm | seed | precision | val AJI | val Dice | val PQ | fit wall time |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for (label, seed), (summary, seconds) in results.items():
        lines.append(
            f"| {label} | {seed} | {summary['precision']} | {summary['val/aji']:.4f} | "
            f"{summary['val/dice']:.4f} | {summary['val/pq']:.4f} | {seconds:.0f} s |"
        )
    lines.append("")
    means = {}
    for metric in ("aji", "dice"):
        deltas = [
            results["fast default", s][0][f"val/{metric}"] - results["fp32", s][0][f"val/{metric}"]
            for s in args.seeds
        ]
        means[metric] = statistics.fmean(deltas)
        spread = {
            label: [results[label, s][0][f"val/{metric}"] for s in args.seeds] for label in ARMS
        }
        noise = ", ".join(
            f"{label} {max(v) - min(v):.4f}" for label, v in spread.items() if len(v) > 1
        )
        lines.append(
            f"- Δ{metric.upper()} (fast - fp32) per seed: "
            + ", ".join(f"{d:+.4f}" for d in deltas)
            + f"; mean {means[metric]:+.4f}"
            + (f"; range between seeds of one precision: {noise}" if noise else "")
        )
    verdict = "within" if all(abs(m) <= GOAL for m in means.values()) else "OUTSIDE"
    slow_s = sum(results["fp32", s][1] for s in args.seeds)
    fast_s = sum(results["fast default", s][1] for s in args.seeds)
    lines.append(
        f"- mean differences {verdict} the ±{GOAL} goal; wall time ratio fp32 / fast "
        f"{slow_s / fast_s:.2f}x"
    )
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
