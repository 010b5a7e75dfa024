"""Copy the run summaries of finished protocol trials into ``experiments/results/``.

Only what ``histo-gan report`` reads is copied (``test_metrics.json``,
``test_metrics_per_image.csv``, ``config.yaml``, ``split.json``, and the fit's
``summary_fit.json`` where the trial names its fit run): never checkpoints or data. Each
trial's test run folder goes to ``OUT/<label>`` where the label names its data mix, split and
seed (``real+hou_budget_4_s0``, :func:`histo_gan.sweep.trial_label`); trials of a sweep also
get ``trial.json``: the trial id, command, ``wall_seconds``, ``attempts``, ``test_seconds``
and ``fit_seconds`` the sweep recorded (the report's ``fit min`` column). A sweep folder
without ``sweep_results.json`` (not started, or ``histo-gan sweep <yaml> --results`` not run
yet) is skipped with a message:

    python experiments/protocols/collect_results.py experiments/results/label_budget/runs \
        --sweep runs/sweeps/label_budget_cpu [--run paper_l1_budget_4_s0=runs/protocols/x/version_3]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from histo_gan.sweep_file import trial_label

SUMMARY_FILES = ("test_metrics.json", "test_metrics_per_image.csv", "config.yaml", "split.json")
TRIAL_FIELDS = ("trial", "command", "wall_seconds", "attempts", "test_seconds", "fit_seconds",
                "fit_run_dir", "fit_global_step")  # fmt: skip


def copy_run(run_dir: Path, out: Path, trial: dict | None = None) -> None:
    """Copy one finished test run's summaries (and, for a sweep trial, its record) to ``out``."""
    missing = [name for name in SUMMARY_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ValueError(f"{run_dir}: not a finished test run (missing {missing})")
    out.mkdir(parents=True, exist_ok=True)
    for name in SUMMARY_FILES:
        shutil.copyfile(run_dir / name, out / name)
    if trial is None:
        return
    fit_summary = Path(str(trial.get("fit_run_dir"))) / "summary_fit.json"
    if trial.get("fit_run_dir") and fit_summary.is_file():
        shutil.copyfile(fit_summary, out / "summary_fit.json")
    record = {key: trial[key] for key in TRIAL_FIELDS if key in trial}
    (out / "trial.json").write_text(json.dumps(record, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder of the copied run summaries")
    parser.add_argument("--sweep", type=Path, action="append", default=[], help="sweep folder")
    parser.add_argument("--run", action="append", default=[], help="LABEL=RUN_DIR")
    args = parser.parse_args(argv)
    runs = [(*label_dir.split("=", 1), None) for label_dir in args.run]
    for sweep in args.sweep:
        results = sweep / "sweep_results.json"
        if not results.is_file():  # a sweep not started yet: nothing of it is finished
            print(f"{sweep}: no sweep_results.json (no finished trial yet), skipped")
            continue
        trials = json.loads(results.read_text())
        runs += [(trial_label(t), t["run_dir"], t) for t in trials if t["status"] == "ok"]
    for label, run_dir, trial in runs:
        copy_run(Path(run_dir), args.out / label, trial)
        print(f"{args.out / label} <- {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
