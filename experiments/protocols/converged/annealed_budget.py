"""The segmenter's budget from complete annealed runs: validation AJI at the end of each budget.

    python experiments/protocols/converged/annealed_budget.py \
        experiments/results/converged_2800/runs/real_budget_all_s* \
        experiments/results/converged/runs/real_budget_all_s* \
        experiments/results/converged_budget/runs_8400/real_budget_all_s* \
        --out experiments/results/converged_budget [--tolerance 0.01]

A constant-rate learning curve (``experiments/protocols/learning_curve/``) shows where a run
at that rate stops improving; the comparisons anneal the rate to 0 over their budget, and an
annealed run's endpoint depends on its length. So the budget of the converged protocol is read
off runs annealed over different budgets (2,800, 5,600, 8,400 steps, ...): each input folder
is a collected trial (``collect_results.py``) with its ``config.yaml`` and the fit's
``summary_fit.json``, whose ``val/aji`` is the score on the split's validation images at the
end of that run. The test images decide nothing here (they are only reported beside).

Rule (``tolerance`` in AJI, default 0.01), on the mean over seeds of each budget:
``plateau`` = the value at the longest budget; ``budget`` = the smallest budget within
``tolerance`` of it; ``flattened`` = the gain from the second longest budget to the longest is
at most ``tolerance`` (so at least two budgets are needed, and a "flattened" plateau has been
confirmed by a longer run than the budget it names). Writes to ``--out``: ``budget.json``
(the fields ``histo-gan report``'s ``plateau`` file needs: ``budget``, ``flattened``,
``network``, ``patch_size``, ``batch_size``, plus the points) and ``budget_curve.png``
(validation and test AJI against the budget, one marker per seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from histo_gan.files import write_text_atomic  # noqa: E402
from histo_gan.report import training_of  # noqa: E402


def read_trial(folder: Path) -> dict:
    """One collected trial: its budget, seed, sizes, end-of-run validation and test AJI."""
    summary_path, config_path = folder / "summary_fit.json", folder / "config.yaml"
    for path in (summary_path, config_path):
        if not path.is_file():
            raise SystemExit(f"{folder}: no {path.name} (collect the trial with its fit summary)")
    summary = json.loads(summary_path.read_text())
    config = yaml.safe_load(config_path.read_text()) or {}
    training = training_of(config)
    test_path = folder / "test_metrics.json"
    test = json.loads(test_path.read_text())["per_image"]["aji"] if test_path.is_file() else None
    if summary.get("global_step") != training.steps:
        raise SystemExit(
            f"{folder}: the fit stopped at step {summary.get('global_step')} of its budget "
            f"{training.steps} (not a complete annealed run)"
        )
    return {
        "folder": str(folder),
        "steps": training.steps,
        "seed": config.get("seed_everything"),
        "val_aji": float(summary["val/aji"]),
        "test_aji": test,
        "network": training.network,
        "patch_size": training.patch_size,
        "batch_size": training.batch_size,
    }


def decide(trials: list[dict], tolerance: float) -> dict:
    """The rule of the module docstring on trials of one network, patch and batch size."""
    sizes = {(t["network"], t["patch_size"], t["batch_size"]) for t in trials}
    if len(sizes) != 1:
        raise SystemExit(f"trials of different networks or sizes: {sorted(map(str, sizes))}")
    by_steps: dict[int, list[float]] = defaultdict(list)
    for trial in trials:
        by_steps[trial["steps"]].append(trial["val_aji"])
    steps = sorted(by_steps)
    if len(steps) < 2:
        raise SystemExit(f"one budget ({steps}); the rule needs runs of at least two budgets")
    means = [sum(by_steps[s]) / len(by_steps[s]) for s in steps]
    plateau = means[-1]
    budget = next(s for s, m in zip(steps, means) if m >= plateau - tolerance)
    gain = means[-1] - means[-2]
    network, patch_size, batch_size = sizes.pop()
    return {
        "budget": budget,
        "plateau": round(plateau, 4),
        "flattened": gain <= tolerance,
        "last_gain": round(gain, 4),
        "tolerance": tolerance,
        "metric": "val/aji at the end of runs annealed over each budget (mean over seeds)",
        "steps": steps,
        "mean_val_aji": [round(m, 4) for m in means],
        "seeds": {str(s): len(by_steps[s]) for s in steps},
        "network": network,
        "patch_size": patch_size,
        "batch_size": batch_size,
    }


def plot(trials: list[dict], record: dict, path: Path) -> None:
    fig, axis = plt.subplots(figsize=(5.2, 3.8))
    for key, colour, label in (
        ("val_aji", "tab:blue", "validation"),
        ("test_aji", "tab:orange", "test"),
    ):
        points = [(t["steps"], t[key]) for t in trials if t[key] is not None]
        if points:
            axis.scatter(*zip(*points), color=colour, alpha=0.7, label=f"{label} AJI (each seed)")
    axis.plot(record["steps"], record["mean_val_aji"], color="tab:blue", label="validation mean")
    axis.axvline(record["budget"], color="red", ls="--", label=f"budget {record['budget']}")
    state = "flattened" if record["flattened"] else "not flattened"
    axis.set_title(f"annealed runs, end of training: {state}", fontsize=9)
    axis.set_xlabel("training steps (rate annealed to 0 over the budget)")
    axis.set_ylabel("AJI")
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trials", type=Path, nargs="+", help="collected trial folders")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    trials = [read_trial(folder) for folder in args.trials]
    record = decide(trials, args.tolerance)
    record["trials"] = trials
    # the report's plateau file: never left half-written
    write_text_atomic(args.out / "budget.json", json.dumps(record, indent=1) + "\n")
    plot(trials, record, args.out / "budget_curve.png")
    keys = ("budget", "plateau", "flattened", "last_gain", "steps", "mean_val_aji")
    print(json.dumps({k: record[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
