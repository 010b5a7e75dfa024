"""A synthesizer's learning curve and whether it flattened, from its (chunked) training run.

    python experiments/protocols/converged/gan_curve.py runs/protocols/<name> \
        --metric val/l1 --lower-is-better [--tolerance 0.005 | --relative-tolerance 0.1] \
        [--also val/realism/w1_h ...] --out experiments/results/<method>/curve

Every synthesizer logs held-out measures while it trains: ``val/l1`` (paired methods: the
synthesized H&E against the real one of held-out label maps), ``val/realism/*`` (the
RealismMonitor callback: stain distances ``w1_h``, ``w1_e``, ``frechet`` and the classifier
two-sample accuracy ``c2st``). The first ``--metric`` decides: the budget rule of
:mod:`histo_gan.metrics.plateau` (on the negated values when lower is better) says where the
curve reaches its plateau and whether its tail has flattened (no trend), and ``settled`` says
whether the tail's evaluations also stay within the tolerance of each other (standard
deviation): a synthesizer may be exported from a flattened and settled curve; a flattened but
unsettled one has no trend only because its measure is noise at that scale. The tolerance is
in the metric's units (``--tolerance``, default 0.01, made for AJI-like scores) or, with
``--relative-tolerance r``, ``r`` times the magnitude of the curve's tail (the mean of its
last third): stain distances are of the order 0.001-0.01, where an absolute 0.01 would call
any curve flat. Writes to ``--out``: ``curve.csv`` (step and every metric), ``plateau.json``
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

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from histo_gan.metrics.plateau import plateau_budget  # noqa: E402
from histo_gan.runs import logged_curve  # noqa: E402


def decide(steps: list[int], values: list[float], lower_is_better: bool, tolerance: float) -> dict:
    """The budget rule on one curve, reported in the metric's own direction."""
    sign = -1.0 if lower_is_better else 1.0
    result = plateau_budget(steps, [sign * v for v in values], tolerance=tolerance)
    return {
        "budget": result.budget,
        "plateau": round(sign * result.plateau, 6),
        "flattened": result.flattened,
        "improvement_over_tail": round(result.rise, 6),
        "tolerance": tolerance,
        "lower_is_better": lower_is_better,
        "smoothed": [round(sign * v, 6) for v in result.smoothed],
    }


def last_third(values: list[float]) -> list[float]:
    """The curve's tail: its last third of evaluations, at least 3 (the plateau rule's tail)."""
    return values[-max(3, round(len(values) / 3)) :]


def steadiness(values: list[float], tolerance: float) -> dict:
    """Whether the last third of the raw curve stays within the tolerance: a curve without a
    trend (``flattened``) can still jump between evaluations by far more than the tolerance,
    and then its plateau is the mean of noise, not a converged value."""
    tail = last_third(values)
    mean = sum(tail) / len(tail)
    sd = math.sqrt(sum((v - mean) ** 2 for v in tail) / (len(tail) - 1))
    return {"tail_sd": round(sd, 6), "settled": sd <= tolerance}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="<root>/<name> of the training run")
    parser.add_argument("--metric", required=True, help="logged column that decides")
    parser.add_argument("--lower-is-better", action="store_true")
    parser.add_argument("--tolerance", type=float, default=0.01, help="in the metric's units")
    parser.add_argument(
        "--relative-tolerance",
        type=float,
        default=None,
        help="instead of --tolerance: this fraction of |mean of the curve's last third|",
    )
    parser.add_argument("--also", nargs="*", default=[], help="more columns to plot")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    names = [args.metric, *args.also]
    curve = logged_curve(args.run, {name: name for name in names})
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
    record = decide(steps, values, args.lower_is_better, tolerance)
    record.update(steadiness(values, tolerance))
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
            axis.set_title(f"{name}: {state}", fontsize=9)
        axis.set_xlabel("training steps")
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "curve.png", dpi=110)
    plt.close(fig)
    keys = ("metric", "budget", "plateau", "flattened", "settled", "tail_sd", "tolerance")
    print(json.dumps({k: record[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
