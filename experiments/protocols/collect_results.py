"""Copy the run summaries of finished protocol trials into ``experiments/results/``.

Only what ``histo-gan report`` reads is copied (``test_metrics.json``,
``test_metrics_per_image.csv``, ``config.yaml``, ``split.json``): never checkpoints or data.
Each trial's test run folder goes to ``OUT/<label>`` where the label names its data mix, split
and seed (``real+hou_budget_4_s0``):

    python experiments/protocols/collect_results.py experiments/results/label_budget/runs \
        --sweep runs/sweeps/label_budget_cpu [--run paper_l1_budget_4_s0=runs/protocols/x/version_3]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

SUMMARY_FILES = ("test_metrics.json", "test_metrics_per_image.csv", "config.yaml", "split.json")


def trial_label(trial: dict) -> str:
    """``real+hou_budget_4_s0`` from a trial's parameters (mix, split, seed)."""
    parts = []
    if "config" in trial:
        parts.append(Path(trial["config"]).stem)
    if "data.split.init_args.path" in trial:
        parts.append(Path(trial["data.split.init_args.path"]).stem)
    parts.append(f"s{trial.get('seed_everything', 0)}")
    return "_".join(parts)


def copy_run(run_dir: Path, out: Path) -> None:
    missing = [name for name in SUMMARY_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ValueError(f"{run_dir}: not a finished test run (missing {missing})")
    out.mkdir(parents=True, exist_ok=True)
    for name in SUMMARY_FILES:
        shutil.copyfile(run_dir / name, out / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder of the copied run summaries")
    parser.add_argument("--sweep", type=Path, action="append", default=[], help="sweep folder")
    parser.add_argument("--run", action="append", default=[], help="LABEL=RUN_DIR")
    args = parser.parse_args(argv)
    runs = [label_dir.split("=", 1) for label_dir in args.run]
    for sweep in args.sweep:
        trials = json.loads((sweep / "sweep_results.json").read_text())
        runs += [(trial_label(t), t["run_dir"]) for t in trials if t["status"] == "ok"]
    for label, run_dir in runs:
        copy_run(Path(run_dir), args.out / label)
        print(f"{args.out / label} <- {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
