"""Does the fast default learn what fp32 learns? The real-only CPU protocol, 300 steps, twice.

    python benchmarks/precision_parity.py [--steps 300] [--out benchmarks/results/precision_parity.md]

Trains the real-only segmenter protocol (``experiments/protocols/learning_curve/cpu.yaml``:
U-Net R18 depth 4, 192-px patches, batch 8, all 15 training images) for ``--steps`` steps from
the same seed, once in ``32-true`` with contiguous networks and once in the fast default
(``trainer.precision: null``, channels-last where preferred), each in its own ``histo-gan fit``
process with one thread, then validates both on the split's 4 validation images. Prints
validation AJI and Dice of both, their differences (goal: both within 0.02), and the wall
time of each fit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "experiments/protocols/learning_curve/cpu.yaml"
ARMS = {"fp32": ["--trainer.precision=32-true", "--channels_last=false"], "fast default": []}


def fit(arm: list[str], steps: int, root: Path, name: str) -> tuple[dict, float]:
    summary = root / f"{name}.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", HISTO_GAN_SUMMARY=str(summary))
    env.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    command = [
        sys.executable, "-m", "histo_gan.cli", "fit", "--config", CONFIG, "--name", name,
        f"--trainer.default_root_dir={root}", f"--trainer.max_steps={steps}",
        f"--data.patches_per_epoch={8 * steps}", "--trainer.logger=false",
        "--trainer.enable_progress_bar=false", "--seed_everything=0", *arm,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(summary.read_text()), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="also write the table (Markdown)")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, arm in ARMS.items():
            results[label] = fit(arm, args.steps, Path(tmp), label.replace(" ", "_"))
            print(f"{label}: {results[label][1]:.0f} s", flush=True)
    (slow, slow_s), (fast, fast_s) = results["fp32"], results["fast default"]
    lines = [
        f"`python benchmarks/precision_parity.py --steps {args.steps}` ({CONFIG}, seed 0, one "
        f"thread each; load average {os.getloadavg()[0]:.2f} at the end)",
        "",
        "| arm | precision | val AJI | val Dice | val PQ | fit wall time |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, (summary, seconds) in results.items():
        lines.append(
            f"| {label} | {summary['precision']} | {summary['val/aji']:.4f} | "
            f"{summary['val/dice']:.4f} | {summary['val/pq']:.4f} | {seconds:.0f} s |"
        )
    d_aji, d_dice = fast["val/aji"] - slow["val/aji"], fast["val/dice"] - slow["val/dice"]
    verdict = "within" if abs(d_aji) <= 0.02 and abs(d_dice) <= 0.02 else "OUTSIDE"
    lines += [
        "",
        f"fast - fp32: ΔAJI {d_aji:+.4f}, ΔDice {d_dice:+.4f} ({verdict} the ±0.02 goal); "
        f"wall time ratio {slow_s / fast_s:.2f}x",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
