"""``histo-gan report``: comparison tables and plots from finished test runs.

    histo-gan report RUN_DIR... --out results/ [--reference data=real] [--metrics aji,dice]
    histo-gan report --protocol experiments/results/cpu/protocol.yaml

A *run folder* is any folder holding ``test_metrics.json`` and ``test_metrics_per_image.csv``
(what ``histo-gan test`` writes), normally with the run's ``config.yaml`` and ``split.json``.
Folders are searched recursively below every path given.

**Arms.** Every run belongs to an arm ``(model, data, budget)`` and has a ``seed``, read from
its files unless the protocol overrides them:

- ``model``: the class name of ``model.class_path`` without ``Module``
  (``Segmenter``, ``SpectralNormCGANSegmenter``);
- ``data``: ``real`` without ``data.synthetic`` (or with ``synthetic_ratio`` 0), ``NAME`` for
  synthetic-only training (``synthetic_ratio`` 1) and ``real+NAME`` otherwise, where NAME is
  the last path component of the synthetic dataset's ``root``;
- ``budget``: the number of training images in ``split.json`` (0 for synthetic-only);
- ``seed``: ``seed_everything``.

Runs of one arm and seed are *folds* (e.g. the leave-one-organ-out splits) and are joined;
their test images must not overlap.

**Protocol file** (YAML; every key optional, relative paths are relative to the file)::

    runs: [runs/*]                   # run folders or globs
    out: .                           # where the tables and plots go
    metrics: [aji, dice, pq]         # per-image metrics to tabulate
    reference: {data: real}          # see below
    bootstrap: {n: 2000, seed: 0, level: 0.95}
    arms:                            # overrides: runs matching a glob get these fields
      - {runs: [runs/loo_*], data: real-loo, budget: loo}

**Reference.** The reference of an arm is the arm with the reference's fields replaced and
all other fields kept: ``{data: real}`` compares ``Segmenter | real+hou | 4`` with
``Segmenter | real | 4``. Give all three fields to compare every arm with one fixed arm.

**Numbers.** For each arm and metric: the mean over seeds of the per-image mean of each seed
(the papers' per-image average) and the spread, the sample standard deviation over seeds
(empty with one seed). The paired difference against the reference: per image, the metric
averaged over the arm's seeds minus the same for the reference, averaged over the images
both were tested on; its confidence interval is the percentile bootstrap over those images
(``n`` resamples from ``numpy.random.default_rng(seed)``, restarted for every comparison).

**Outputs** in ``out``: ``table.md``, ``table.csv`` (one row per arm), ``per_organ.csv``,
``runs.csv`` (which folder went where), ``budget_<metric>.png`` (metric vs label budget, one
line per model and data) and ``organs_<metric>.png`` (per-organ means of each arm).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import yaml

from histo_gan.files import write_text_atomic

__all__ = ["Arm", "Run", "build_table", "find_runs", "load_run", "main", "write_report"]

DEFAULT_METRICS = ("aji", "dice", "pq", "f1", "hausdorff")
ARM_FIELDS = ("model", "data", "budget")


@dataclass(frozen=True, order=True)
class Arm:
    """One protocol arm. ``budget`` is a string ("4", "0", "loo") so any label fits."""

    model: str
    data: str
    budget: str

    def replace(self, **fields: str) -> Arm:
        return Arm(**{**self.__dict__, **{k: str(v) for k, v in fields.items()}})

    def sort_key(self) -> tuple:
        numeric = self.budget.isdigit()
        return (self.model, self.data != "real", self.data, not numeric,
                int(self.budget) if numeric else 0, self.budget)  # fmt: skip

    def __str__(self) -> str:
        return f"{self.model} | {self.data} | {self.budget}"


@dataclass
class Run:
    """A finished test run: its arm, seed and per-image rows (``image_id``, ``organ``, metrics)."""

    path: Path
    arm: Arm
    seed: int
    rows: list[dict] = field(repr=False)


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (holding ``test_metrics.json``) at or below each path, sorted, unique."""
    found: set[Path] = set()
    for path in paths:
        if (path / "test_metrics.json").is_file():
            found.add(path)
        elif path.is_dir():
            found.update(p.parent for p in path.rglob("test_metrics.json"))
        else:
            raise ValueError(f"{path}: not a folder")
    return sorted(found)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    content = yaml.safe_load(path.read_text())
    return content if isinstance(content, dict) else {}


def infer_arm(config: dict, split: dict) -> tuple[dict, int | None]:
    """Arm fields and seed of a run from its ``config.yaml`` and ``split.json`` contents."""
    model = str((config.get("model") or {}).get("class_path", "unknown")).rsplit(".", 1)[-1]
    model = model.removesuffix("Module") or model
    data_config = config.get("data") or {}
    synthetic = data_config.get("synthetic")
    ratio = float(data_config.get("synthetic_ratio") or 0.0)
    if not synthetic or ratio <= 0:
        data = "real"
    else:
        root = (
            (synthetic.get("init_args") or {}).get("root", "")
            if isinstance(synthetic, dict)
            else ""
        )
        name = Path(str(root)).name or "synthetic"
        data = name if ratio >= 1 else f"real+{name}"
    if ratio >= 1:
        budget = "0"
    else:
        budget = str(len(split["train"])) if "train" in split else "?"
    seed = config.get("seed_everything")
    if seed is None or isinstance(seed, bool):
        seed = data_config.get("seed")
    return {"model": model, "data": data, "budget": budget}, seed


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "image_id" not in rows[0]:
        raise ValueError(f"{path}: no per-image rows (needs an image_id column)")
    parsed = []
    for row in rows:
        out = {"image_id": row["image_id"], "organ": row.get("organ") or "unknown"}
        for key, value in row.items():
            if key not in out and value not in (None, ""):
                out[key] = float(value)
        parsed.append(out)
    return parsed


def load_run(path: Path, overrides: dict | None = None) -> Run:
    """Read one run folder; ``overrides`` replaces inferred arm fields and the seed."""
    config = _read_yaml(path / "config.yaml")
    split_path = path / "split.json"
    split = json.loads(split_path.read_text()) if split_path.is_file() else {}
    fields, seed = infer_arm(config, split)
    overrides = overrides or {}
    fields.update({k: str(overrides[k]) for k in ARM_FIELDS if k in overrides})
    seed = overrides.get("seed", seed)
    if seed is None:
        raise ValueError(
            f"{path}: no seed (seed_everything) in config.yaml; set one in the protocol"
        )
    return Run(path, Arm(**fields), int(seed), _read_rows(path / "test_metrics_per_image.csv"))


def _overrides_for(path: Path, rules: list[dict], base: Path) -> dict:
    """Fields of every protocol ``arms`` rule whose globs match ``path`` (later rules win)."""
    relative = os.path.relpath(path, base)
    merged: dict = {}
    for rule in rules:
        patterns = rule.get("runs", [])
        if any(fnmatch(relative, p) or fnmatch(relative, f"{p}/*") for p in patterns):
            merged.update({k: v for k, v in rule.items() if k != "runs"})
    return merged


# --- numbers ----------------------------------------------------------------------------


def _per_seed(runs: list[Run]) -> dict[int, dict[str, dict]]:
    """``seed -> image_id -> row``, joining folds; an image twice in one seed is an error."""
    seeds: dict[int, dict[str, dict]] = {}
    for run in runs:
        images = seeds.setdefault(run.seed, {})
        for row in run.rows:
            if row["image_id"] in images:
                raise ValueError(
                    f"{run.path}: image {row['image_id']} already tested in another run of "
                    f"arm '{run.arm}' seed {run.seed}"
                )
            images[row["image_id"]] = row
    image_sets = {frozenset(images) for images in seeds.values()}
    if len(image_sets) > 1:
        raise ValueError(f"arm '{runs[0].arm}': its seeds were tested on different images")
    return seeds


def _image_means(seeds: dict[int, dict[str, dict]], metric: str) -> dict[str, float]:
    """Per image: the metric averaged over seeds."""
    images = next(iter(seeds.values()))
    return {i: float(np.mean([seeds[s][i][metric] for s in seeds])) for i in images}


def paired_difference(
    arm: dict[str, float], reference: dict[str, float], n: int, seed: int, level: float
) -> tuple[float, float, float, int]:
    """Mean over shared images of ``arm - reference`` and its percentile-bootstrap interval.

    Args:
        arm, reference: per-image values (already averaged over seeds).
    Returns:
        ``(difference, low, high, number of shared images)``; NaNs when none are shared.
    """
    shared = sorted(set(arm) & set(reference))
    if not shared:
        return math.nan, math.nan, math.nan, 0
    d = np.array([arm[i] - reference[i] for i in shared])
    resampled = d[np.random.default_rng(seed).integers(0, len(d), size=(n, len(d)))].mean(1)
    low, high = np.quantile(resampled, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(d.mean()), float(low), float(high), len(shared)


def build_table(
    runs: list[Run],
    metrics: list[str],
    reference: dict,
    n_bootstrap: int = 2000,
    bootstrap_seed: int = 0,
    level: float = 0.95,
) -> tuple[list[dict], list[dict]]:
    """One row per arm (see the module docstring) and per-organ rows ``(arm, organ, metrics)``."""
    by_arm: dict[Arm, list[Run]] = {}
    for run in runs:
        by_arm.setdefault(run.arm, []).append(run)
    arms = sorted(by_arm, key=Arm.sort_key)
    seeds = {arm: _per_seed(by_arm[arm]) for arm in arms}
    for metric in metrics:
        for arm in arms:
            for images in seeds[arm].values():
                if any(metric not in row for row in images.values()):
                    raise ValueError(f"arm '{arm}': metric {metric!r} is missing in its runs")
    rows, organ_rows = [], []
    for arm in arms:
        ref = arm.replace(**reference)
        row: dict = {**arm.__dict__, "seeds": len(seeds[arm]),
                     "images": len(next(iter(seeds[arm].values()))),
                     "reference": "" if ref not in seeds else ("self" if ref == arm else str(ref))}  # fmt: skip
        for metric in metrics:
            per_seed = [
                np.mean([r[metric] for r in images.values()]) for images in seeds[arm].values()
            ]
            row[f"{metric}_mean"] = float(np.mean(per_seed))
            row[f"{metric}_spread"] = (
                float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan
            )
            difference = (math.nan, math.nan, math.nan, 0)
            if ref in seeds and ref != arm:
                difference = paired_difference(
                    _image_means(seeds[arm], metric), _image_means(seeds[ref], metric),
                    n_bootstrap, bootstrap_seed, level,
                )  # fmt: skip
            for suffix, value in zip(("diff", "diff_low", "diff_high"), difference[:3]):
                row[f"{metric}_{suffix}"] = value
            row["paired_images"] = difference[3] if ref != arm else row["images"]
        rows.append(row)
        images = next(iter(seeds[arm].values()))
        for organ in sorted({r["organ"] for r in images.values()}):
            ids = [i for i, r in images.items() if r["organ"] == organ]
            organ_row = {**arm.__dict__, "organ": organ, "images": len(ids)}
            for metric in metrics:
                organ_row[metric] = float(
                    np.mean([seeds[arm][s][i][metric] for s in seeds[arm] for i in ids])
                )
            organ_rows.append(organ_row)
    return rows, organ_rows


# --- output -----------------------------------------------------------------------------


def _fmt(value: float, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (_fmt(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def markdown_table(rows: list[dict], metrics: list[str], reference: dict, bootstrap: dict) -> str:
    """The main table: ``mean ± spread`` and ``difference [low, high]`` per metric."""
    rule = ", ".join(f"{k}={v}" for k, v in reference.items())
    header = ["model", "data", "budget", "seeds", "images"]
    for metric in metrics:
        header += [metric, f"Δ{metric} [{bootstrap['level']:.0%} CI]"]
    lines = [
        f"Reference of each arm: the same arm with {rule}. Values: mean ± sample standard "
        "deviation over seeds of the per-image mean. Δ: per-image paired difference to the "
        f"reference (averaged over seeds), percentile bootstrap over images "
        f"(n={bootstrap['n']}, seed={bootstrap['seed']}).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * 3 + "---:|" * (len(header) - 3),
    ]
    for row in rows:
        cells = [row["model"], row["data"], row["budget"], str(row["seeds"]), str(row["images"])]
        for metric in metrics:
            spread = _fmt(row[f"{metric}_spread"])
            cells.append(_fmt(row[f"{metric}_mean"]) + (f" ± {spread}" if spread else ""))
            if row["reference"] == "self":
                cells.append("reference")
            elif math.isnan(row[f"{metric}_diff"]):
                cells.append("")
            else:
                cells.append(
                    f"{_fmt(row[f'{metric}_diff'], True)} "
                    f"[{_fmt(row[f'{metric}_diff_low'], True)}, {_fmt(row[f'{metric}_diff_high'], True)}]"
                )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_budgets(rows: list[dict], metric: str, path: Path) -> bool:
    """Metric vs label budget, one line per (model, data); False when no budget is numeric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[dict]] = {}
    for row in rows:
        if row["budget"].isdigit() and int(row["budget"]) > 0:
            lines.setdefault(f"{row['model']} | {row['data']}", []).append(row)
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in lines.items():
        points = sorted(points, key=lambda r: int(r["budget"]))
        spread = [
            0.0 if math.isnan(r[f"{metric}_spread"]) else r[f"{metric}_spread"] for r in points
        ]
        ax.errorbar([int(r["budget"]) for r in points], [r[f"{metric}_mean"] for r in points],
                    yerr=spread, marker="o", capsize=3, label=label)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("labelled training images")
    ax.set_ylabel(f"test {metric} (mean ± sd over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_organs(organ_rows: list[dict], metric: str, path: Path) -> None:
    """Grouped bars: per organ, the mean metric of each arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    organs = sorted({r["organ"] for r in organ_rows})
    arms = list(dict.fromkeys(str(Arm(r["model"], r["data"], r["budget"])) for r in organ_rows))
    width = 0.8 / max(len(arms), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(organs)), 4))
    for k, arm in enumerate(arms):
        values = {r["organ"]: r[metric] for r in organ_rows
                  if str(Arm(r["model"], r["data"], r["budget"])) == arm}  # fmt: skip
        x = [j + (k - (len(arms) - 1) / 2) * width for j, o in enumerate(organs) if o in values]
        ax.bar(x, [values[o] for o in organs if o in values], width, label=arm)
    ax.set_xticks(range(len(organs)), organs, rotation=30)
    ax.set_ylabel(f"test {metric} (mean over images and seeds)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    runs: list[Run],
    out: Path,
    metrics: list[str],
    reference: dict,
    bootstrap: dict,
    base: Path,
    plots: bool = True,
) -> tuple[list[dict], str]:
    """Write every output file into ``out``; returns the table rows and the markdown."""
    rows, organ_rows = build_table(
        runs, metrics, reference, bootstrap["n"], bootstrap["seed"], bootstrap["level"]
    )
    markdown = markdown_table(rows, metrics, reference, bootstrap)
    write_text_atomic(out / "table.md", markdown)
    write_text_atomic(out / "table.csv", _csv_text(rows))
    write_text_atomic(out / "per_organ.csv", _csv_text(organ_rows))
    run_rows = [{**r.arm.__dict__, "seed": r.seed, "images": len(r.rows),
                 "path": Path(os.path.relpath(r.path, base)).as_posix()}
                for r in sorted(runs, key=lambda r: (r.arm.sort_key(), r.seed, str(r.path)))]  # fmt: skip
    write_text_atomic(out / "runs.csv", _csv_text(run_rows))
    if plots:
        for metric in metrics:
            plot_budgets(rows, metric, out / f"budget_{metric}.png")
            plot_organs(organ_rows, metric, out / f"organs_{metric}.png")
    return rows, markdown


def _parse_reference(text: str) -> dict:
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 or p[0].strip() not in ARM_FIELDS for p in pairs):
        raise ValueError(
            f"--reference must be FIELD=VALUE[,...] with fields {ARM_FIELDS}: {text!r}"
        )
    return {k.strip(): v.strip() for k, v in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="histo-gan report", description="Comparison tables and plots from test runs.",
        epilog="The arm, reference and statistics rules: see `python -m pydoc histo_gan.report`.",
    )  # fmt: skip
    parser.add_argument("runs", nargs="*", type=Path, help="run folders or folders above them")
    parser.add_argument("--protocol", type=Path, help="protocol YAML (runs, out, metrics, ...)")
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument("--metrics", help="comma-separated per-image metrics")
    parser.add_argument("--reference", help="FIELD=VALUE,... (default data=real)")
    parser.add_argument("--n-bootstrap", type=int, help="bootstrap resamples (2000)")
    parser.add_argument("--seed", type=int, help="bootstrap seed (0)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)

    protocol = _read_yaml(args.protocol) if args.protocol else {}
    if args.protocol and not args.protocol.is_file():
        raise ValueError(f"{args.protocol}: protocol file does not exist")
    base = args.protocol.parent if args.protocol else Path(".")
    paths = list(args.runs) or [
        p for pattern in protocol.get("runs", []) for p in sorted(base.glob(pattern))
    ]
    if not paths:
        raise ValueError("no run folders given (arguments or the protocol's 'runs')")
    out = args.out or (base / protocol["out"] if "out" in protocol else None)
    if out is None:
        raise ValueError("--out is required without a protocol 'out'")
    metrics = (
        args.metrics.split(",") if args.metrics else list(protocol.get("metrics", DEFAULT_METRICS))
    )
    reference = _parse_reference(args.reference) if args.reference else dict(
        protocol.get("reference", {"data": "real"})
    )  # fmt: skip
    bootstrap = {"n": 2000, "seed": 0, "level": 0.95, **protocol.get("bootstrap", {})}
    if args.n_bootstrap is not None:
        bootstrap["n"] = args.n_bootstrap
    if args.seed is not None:
        bootstrap["seed"] = args.seed

    rules = protocol.get("arms", [])
    runs = [load_run(p, _overrides_for(p, rules, base)) for p in find_runs(paths)]
    if not runs:
        raise ValueError(f"no run folders with test_metrics.json under {[str(p) for p in paths]}")
    _, markdown = write_report(runs, out, metrics, reference, bootstrap, base, not args.no_plots)
    print(markdown)
    print(f"{len(runs)} runs -> {out}/table.md, table.csv, per_organ.csv, runs.csv and plots")
    return 0
