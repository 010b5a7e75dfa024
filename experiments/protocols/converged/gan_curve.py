"""A synthesizer's learning curve and whether it flattened, from its (chunked) training run.

    python experiments/protocols/converged/gan_curve.py runs/protocols/<name> \
        --metric val/l1 --lower-is-better [--tolerance 0.005 | --relative-tolerance 0.1] \
        [--noise-sd 0.03 | --noise-metric val/realism/c2st_se] \
        [--also val/realism/w1_h ...] --out experiments/results/<method>/curve

Every synthesizer logs held-out measures while it trains: ``val/l1`` (paired methods: the
synthesized H&E against the real one of held-out label maps), ``val/realism/*`` (the
RealismMonitor callback: stain distances ``w1_h``, ``w1_e``, ``frechet`` and the classifier
two-sample accuracy ``c2st``). The first ``--metric`` decides: the budget rule of
:mod:`histo_gan.metrics.plateau` (on the negated values when lower is better) says where the
curve reaches its plateau and whether its tail has flattened (no trend: neither improving
nor getting worse by more than the limit), and ``settled`` says
whether the tail's evaluations also stay within the tolerance of each other (standard
deviation): a synthesizer may be exported from a flattened and settled curve; a flattened but
unsettled one has no trend only because its measure is noise at that scale. The tolerance is
in the metric's units (``--tolerance``, default 0.01, made for AJI-like scores) or, with
``--relative-tolerance r``, ``r`` times the magnitude of the curve's tail (the mean of its
last third): stain distances are of the order 0.001-0.01, where an absolute 0.01 would call
any curve flat.

A measure noisier than the tolerance (the two-sample test of a few hundred crops) cannot say
that a curve moved less than the tolerance; given its noise, the rule asks instead whether
the curve moved more than the noise explains (:mod:`histo_gan.metrics.plateau`):
``--noise-sd`` is the standard deviation of re-measuring an unchanged generator
(``c2st_noise.py`` measures it for the two-sample test), ``--noise-metric`` a logged column
holding it per evaluation (the RealismMonitor's ``val/realism/c2st_se`` with ``c2st_repeats``
of 2 or more; its root mean square over the curve is used). ``plateau.json`` then records the limits
(``rise_limit``, ``settle_limit``) and whether the verdict needed the noise
(``settled_by_noise``).

A curve is judged as far as its run trained: ``plateau.json`` records ``trained_steps`` and
``max_steps`` or, for an epoch budget, ``trained_epochs`` and ``max_epochs`` (from the chunks'
``summary_fit.json`` and ``config.yaml``) and ``complete`` (the budget reached, by a chunk that
the chunk timer did not stop); the report calls an incomplete curve
incomplete, whatever its tail reads. The run may also be a ``curve.csv`` this script wrote (step and one column per metric): a
committed curve is judged again from its own file. Writes to ``--out``: ``curve.csv`` (step and every metric), ``plateau.json``
(the rule's result, in the metric's own direction) and ``curve.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from histo_gan.metrics.plateau import plateau_budget, tail_steadiness  # noqa: E402
from histo_gan.runs import logged_curve, versions  # noqa: E402


def decide(
    steps: list[int],
    values: list[float],
    lower_is_better: bool,
    tolerance: float,
    noise_sd: float = 0.0,
) -> dict:
    """The budget rule on one curve, reported in the metric's own direction."""
    sign = -1.0 if lower_is_better else 1.0
    result = plateau_budget(
        steps, [sign * v for v in values], tolerance=tolerance, noise_sd=noise_sd
    )
    # no trend either way: a generator whose tail gets worse has not reached a plateau either
    # (the segmenter's budget rule is one-sided: a decline there is past the plateau)
    return {
        "budget": result.budget,
        "plateau": round(sign * result.plateau, 6),
        "flattened": abs(result.rise) <= result.rise_limit,
        "improvement_over_tail": round(result.rise, 6),
        "tolerance": tolerance,
        "noise_sd": round(noise_sd, 6),
        "rise_limit": round(result.rise_limit, 6),
        "lower_is_better": lower_is_better,
        "smoothed": [round(sign * v, 6) for v in result.smoothed],
    }


def last_third(values: list[float]) -> list[float]:
    """The curve's tail: its last third of evaluations, at least 3 (the plateau rule's tail)."""
    return values[-max(3, round(len(values) / 3)) :]


def steadiness(values: list[float], tolerance: float, noise_sd: float = 0.0) -> dict:
    """Whether the last third of the raw curve stays within the tolerance (or, given the
    measure's noise, spreads no more than it explains): a curve without a trend
    (``flattened``) can still jump between evaluations by far more than the tolerance, and
    then its plateau is the mean of noise, not a converged value."""
    result = tail_steadiness(values, tolerance, noise_sd)
    return {
        "tail_sd": round(result.tail_sd, 6),
        "settled": result.settled,
        "settle_limit": round(result.limit, 6),
        "settled_by_noise": result.by_noise,
    }


def training_extent(run: Path, curve: dict[int, dict[str, float]]) -> dict:
    """``trained_steps`` and, where the run's budget is known, ``complete``: with a step
    budget (``max_steps``) whether a chunk reached it; with an epoch budget (``max_epochs``,
    ``max_steps`` -1) whether the newest chunk ended by its budget, not by the chunk timer,
    at ``max_epochs`` (``trained_epochs``). Budgets from the newest ``config.yaml``, steps,
    epochs and how each chunk ended from the chunks' ``summary_fit.json``."""
    trained, epochs = max(curve, default=0), 0
    max_steps = max_epochs = ended_by_timer = None
    for version in versions(run.parent, run.name):  # oldest first
        folder = run / f"version_{version}"
        if (folder / "config.yaml").is_file():
            config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
            trainer = config.get("trainer") or {}
            max_steps = trainer.get("max_steps", max_steps)
            max_epochs = trainer.get("max_epochs", max_epochs)
        summary = folder / "summary_fit.json"
        if summary.is_file():
            record = json.loads(summary.read_text())
            trained = max(trained, int(record.get("global_step", 0)))
            epochs = max(epochs, int(record.get("epochs", 0)))
            max_steps = record.get("max_steps", max_steps)
            ended_by_timer = record.get("stopped_by_chunk_timer", ended_by_timer)
    if max_steps is not None and max_steps > 0:
        return {
            "trained_steps": trained,
            "max_steps": int(max_steps),
            "complete": trained >= max_steps,
        }
    if max_epochs is not None and max_epochs > 0 and ended_by_timer is not None:
        # a chunk stopped inside an epoch counts that epoch as begun: only a chunk that ended
        # by the budget says the last epoch was trained to its end
        done = not ended_by_timer and epochs >= max_epochs
        return {
            "trained_steps": trained,
            "trained_epochs": epochs,
            "max_epochs": int(max_epochs),
            "complete": done,
        }
    return {"trained_steps": trained}


def read_curve(source: Path, names: list[str]) -> dict[int, dict[str, float]]:
    """``{steps trained: {name: value}}`` of a run folder's logs or of a written ``curve.csv``."""
    if source.suffix != ".csv":
        return logged_curve(source, {name: name for name in names})
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    absent = [n for n in names if rows and n not in rows[0]]
    if not rows or absent:
        raise SystemExit(f"{source}: no rows, or no column {absent} in the curve file")
    return {
        int(row["step"]): {n: float(row[n]) if row[n] else math.nan for n in names} for row in rows
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run", type=Path, help="<root>/<name> of the training run, or a curve.csv written here"
    )
    parser.add_argument("--metric", required=True, help="logged column that decides")
    parser.add_argument("--lower-is-better", action="store_true")
    parser.add_argument("--tolerance", type=float, default=0.01, help="in the metric's units")
    parser.add_argument(
        "--relative-tolerance",
        type=float,
        default=None,
        help="instead of --tolerance: this fraction of |mean of the curve's last third|",
    )
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument(
        "--noise-sd", type=float, default=0.0, help="sd of re-measuring an unchanged generator"
    )
    noise.add_argument(
        "--noise-metric", default=None, help="logged column holding that sd per evaluation"
    )
    parser.add_argument("--also", nargs="*", default=[], help="more columns to plot")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    names = [args.metric, *args.also]
    if args.noise_metric and args.noise_metric not in names:
        names.append(args.noise_metric)
    curve = read_curve(args.run, names)
    points = [(s, v[args.metric]) for s, v in curve.items() if math.isfinite(v[args.metric])]
    if len(points) < 6:
        raise SystemExit(
            f"{args.run}: {len(points)} logged values of {args.metric}; the rule needs 6"
        )
    steps, values = [s for s, _ in points], [v for _, v in points]
    tolerance = args.tolerance
    if args.relative_tolerance is not None:
        tail = last_third(values)
        tolerance = args.relative_tolerance * abs(sum(tail) / len(tail))
    noise_sd = args.noise_sd
    if args.noise_metric:
        logged = [
            v[args.noise_metric] for v in curve.values() if math.isfinite(v[args.noise_metric])
        ]
        if not logged:
            raise SystemExit(f"{args.run}: no logged value of {args.noise_metric}")
        # root mean square: the mean of per-evaluation variances is unbiased, a mean of
        # standard deviations from few repeats reads low
        noise_sd = math.sqrt(sum(v * v for v in logged) / len(logged))
    record = decide(steps, values, args.lower_is_better, tolerance, noise_sd)
    record.update(steadiness(values, tolerance, noise_sd))
    if args.noise_metric:
        record["noise_metric"] = args.noise_metric
    if args.run.suffix != ".csv":
        record.update(training_extent(args.run, curve))
    if args.relative_tolerance is not None:
        record["relative_tolerance"] = args.relative_tolerance
    record.update(run=str(args.run), metric=args.metric, steps=steps, values=values)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "curve.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["step", *names])
        for step, logged in curve.items():
            writer.writerow([step, *(f"{logged[n]:.6g}" for n in names)])
    (args.out / "plateau.json").write_text(json.dumps(record, indent=1) + "\n")
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        xs = [s for s, v in curve.items() if math.isfinite(v[name])]
        axis.plot(xs, [curve[s][name] for s in xs], marker=".", alpha=0.6, label=name)
        if name == args.metric:
            axis.plot(steps, record["smoothed"], color="black", ls=":", label="smoothed")
            axis.axhline(record["plateau"], color="grey", ls="--", label="plateau")
            axis.axvline(record["budget"], color="red", ls="--", label=f"budget {record['budget']}")
            state = "flattened" if record["flattened"] else "not flattened"
            state += ", settled" if record["settled"] else f", tail sd {record['tail_sd']:.2g}"
            if noise_sd:
                state += f" (noise sd {noise_sd:.2g})"
            axis.set_title(f"{name}: {state}", fontsize=9)
        axis.set_xlabel("training steps")
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "curve.png", dpi=110)
    plt.close(fig)
    keys = (
        "metric",
        "budget",
        "plateau",
        "flattened",
        "settled",
        "tail_sd",
        "tolerance",
        "noise_sd",
    )
    print(json.dumps({k: record[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
