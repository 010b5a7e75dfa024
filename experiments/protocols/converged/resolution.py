"""What a comparison table can resolve: the noise of each paired difference, split into the
test images and the training seeds, and the smallest difference a design would detect.

    python experiments/protocols/converged/resolution.py \
        --protocol experiments/results/converged/protocol.yaml [--metric aji] \
        --out experiments/results/converged/resolution

The runs, arms and references are the report's (``histo_gan.report``: the protocol's ``runs``,
``arms`` and ``reference``); the model of the noise and its estimators are
:mod:`histo_gan.metrics.seed_noise`'s: per test image, ``y_si = m_i + u_s + e_si``, a run's
shift ``u_s`` shared by all its images and the per-image rest ``e_si``, pooled over the arms
with two or more seeds. For each arm against its reference, the standard error of the paired
difference is split into the test images' part (what a bootstrap over images measures) and
the shared shift's part (what the report adds to that bootstrap), and the smallest difference
a design detects with power 0.8 in a two-sided test at 0.05 is given for the tested design
and for more test images or seeds (the same variance components; ``s_img^2``, the spread of
the true per-image effect, is ``var_i(D_i) - s_e^2 (1/S_a + 1/S_r)``, at least 0). With two
or three seeds per arm the training terms are rough: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

import yaml

from histo_gan.files import write_text_atomic
from histo_gan.metrics.seed_noise import (
    ALPHA,
    POWER,
    TrainingNoise,
    detectable,
    difference_variance,
    pooled_noise,
)
from histo_gan.report import (
    Arm,
    arm_overrides,
    find_runs,
    load_run,
    reference_arm,
    rows_by_seed,
    runs_by_arm,
    seed_matrix,
)

DESIGNS = ((11, 2), (11, 3), (11, 10), (22, 3), (44, 3))  # (test images, seeds per arm)


def label(arm: Arm) -> str:
    """An arm as a table cell: ``model, data, budget`` (the report's ``|`` would split it)."""
    return f"{arm.model}, {arm.data}, {arm.budget}"


def comparisons(
    runs: list, reference: dict | list, metric: str
) -> tuple[list[dict], TrainingNoise]:
    """One record per arm with a tested reference other than itself, and the pooled noise."""
    seeds = {arm: rows_by_seed(arm_runs) for arm, arm_runs in runs_by_arm(runs).items()}
    images = {arm: sorted(next(iter(s.values()))) for arm, s in seeds.items()}
    noise = pooled_noise([seed_matrix(seeds[a], metric, images[a]) for a in sorted(seeds)])
    records = []
    for arm in sorted(seeds, key=Arm.sort_key):
        ref = reference_arm(arm, reference, seeds)
        if ref == arm or ref not in seeds:
            continue
        shared = sorted(set(images[arm]) & set(images[ref]))
        if len(shared) < 2:
            continue
        arm_values = seed_matrix(seeds[arm], metric, shared)
        ref_values = seed_matrix(seeds[ref], metric, shared)
        per_image = arm_values.mean(0) - ref_values.mean(0)
        s_a, s_r = len(arm_values), len(ref_values)
        spread = max(float(per_image.var(ddof=1)) - noise.per_image * (1 / s_a + 1 / s_r), 0.0)
        image_part, training_part = difference_variance(spread, noise, len(shared), s_a, s_r)
        records.append(
            {
                "arm": label(arm),
                "reference": label(ref),
                "seeds": s_a,
                "reference_seeds": s_r,
                "images": len(shared),
                "difference": float(per_image.mean()),
                "se_images": math.sqrt(image_part),
                "se_training": math.sqrt(training_part),
                "se": math.sqrt(image_part + training_part),
                "image_spread_sd": math.sqrt(spread),
                "detectable": detectable(image_part + training_part),
                "designs": {
                    f"{i} images x {s} seeds": detectable(
                        sum(difference_variance(spread, noise, i, s, s))
                    )
                    for i, s in DESIGNS
                },
            }
        )
    return records, noise


def markdown(records: list[dict], noise: TrainingNoise, metric: str, protocol: Path) -> str:
    """The tables of ``resolution.md``."""
    lines = [
        f"Resolution of `{protocol}` ({metric}; `experiments/protocols/converged/resolution.py`; "
        "model and estimators: `histo_gan.metrics.seed_noise`). Training noise pooled over "
        f"{noise.arms} arms ({noise.degrees_of_freedom} degrees of freedom): a run's shift "
        f"shared by all its images sd {math.sqrt(noise.shared):.4f}, the per-image rest sd "
        f"{math.sqrt(noise.per_image):.4f}. SE: standard error of the paired difference, from "
        "the test images (what a bootstrap over images measures) and from the training seeds "
        f"(what the report adds to it). Detectable: the smallest true difference found with power "
        f"{POWER} by a two-sided test at {ALPHA}.",
        "",
        "| arm | reference | seeds | images | Δ | SE images | SE seeds | SE | detectable |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['arm']} | {r['reference']} | {r['seeds']} vs {r['reference_seeds']} | "
            f"{r['images']} | {r['difference']:+.4f} | {r['se_images']:.4f} | "
            f"{r['se_training']:.4f} | {r['se']:.4f} | {r['detectable']:.4f} |"
        )
    if records:
        designs = list(records[0]["designs"])
        lines += [
            "",
            "Detectable difference of each comparison under other designs (same variance "
            "components; seeds for the arm and its reference alike):",
            "",
            "| arm | " + " | ".join(designs) + " |",
            "|---|" + "---:|" * len(designs),
        ]
        for r in records:
            values = " | ".join(f"{r['designs'][d]:.4f}" for d in designs)
            lines.append(f"| {r['arm']} | {values} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", type=Path, required=True, help="the report's protocol")
    parser.add_argument("--metric", default="aji", help="per-image metric (aji)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and table")
    args = parser.parse_args(argv)
    if not args.protocol.is_file():
        raise SystemExit(f"{args.protocol}: protocol file does not exist")
    protocol = yaml.safe_load(args.protocol.read_text()) or {}
    base = args.protocol.parent
    paths = [p for pattern in protocol.get("runs", []) for p in sorted(base.glob(pattern))]
    rules = protocol.get("arms", [])
    runs = [load_run(p, arm_overrides(p, rules, base)) for p in find_runs(paths)]
    if not runs:
        raise SystemExit(f"{args.protocol}: no finished runs under its 'runs'")
    reference = protocol.get("reference", {"data": "real"})
    records, noise = comparisons(runs, reference, args.metric)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"metric": args.metric, "noise": asdict(noise), "comparisons": records}
    write_text_atomic(args.out / "resolution.json", json.dumps(result, indent=2) + "\n")
    text = markdown(records, noise, args.metric, args.protocol)
    write_text_atomic(args.out / "resolution.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
