"""What a comparison table can resolve: the noise of each paired difference, split into the
test images and the training seeds, and the smallest difference a design would detect.

    python experiments/protocols/converged/resolution.py \
        --protocol experiments/results/converged/protocol.yaml [--metric aji] \
        --out experiments/results/converged/resolution

The runs, arms and references are the report's (``histo_gan.report``: the protocol's ``runs``,
``arms`` and ``reference``). Model of one metric on test image ``i`` in the run of seed ``s``
of one arm::

    y_si = m_i + u_s + e_si

``m_i``: the arm's expected value on the image; ``u_s``: a shift shared by every image of one
training run (the seed's draw of weights and patches); ``e_si``: the rest of the training
noise, image by image. For an arm against its reference on the same ``I`` test images, with
``S_a`` and ``S_r`` seeds, the paired difference of the report (per image, the seed means'
difference, then the mean over images) has::

    Var(D) = s_img^2 / I + (s_e^2 / S_a + s_e^2 / S_r) / I + s_u^2 / S_a + s_u^2 / S_r

``s_img^2``: the spread over images of the arm's true per-image effect. The report's bootstrap
resamples images only, so its interval measures the first two terms; the last two, training
shifts shared by all images, it leaves out. Estimates, from every arm with two or more seeds
(per arm: ``w``, the mean over images of the across-seed variance, ``= s_u^2 + s_e^2``; ``v``,
the variance of the seeds' image means, ``= s_u^2 + s_e^2 / I``), pooled with weights
``seeds - 1`` (one segmenter at one budget in every arm: the protocol's premise)::

    s_e^2 = (w - v) * I / (I - 1)        s_u^2 = max(v - s_e^2 / I, 0)
    s_img^2 = max(var_i(D_i) - s_e^2 * (1 / S_a + 1 / S_r), 0)   (per comparison)

The smallest difference a design detects with power 0.8 in a two-sided test at 0.05 is
``(z_0.975 + z_0.8) * sqrt(Var(D))``; ``resolution.md`` gives it for the tested design and for
more test images or seeds (the same variance components). With two or three seeds per arm the
training terms are rough: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import norm

from histo_gan.report import (
    Arm,
    arm_overrides,
    find_runs,
    load_run,
    reference_arm,
    rows_by_seed,
)

POWER, ALPHA = 0.8, 0.05
DESIGNS = ((11, 2), (11, 3), (11, 10), (22, 3), (44, 3))  # (test images, seeds per arm)


@dataclass(frozen=True)
class TrainingNoise:
    """Pooled training-noise components of one metric (variances, metric units squared)."""

    shared: float  # s_u^2: a run's shift common to all its images
    per_image: float  # s_e^2: the rest, image by image
    arms: int  # arms with two or more seeds that were pooled
    degrees_of_freedom: int  # sum of (seeds - 1)


def label(arm: Arm) -> str:
    """An arm as a table cell: ``model, data, budget`` (the report's ``|`` would split it)."""
    return f"{arm.model}, {arm.data}, {arm.budget}"


def seed_matrix(seeds: dict[int, dict[str, dict]], metric: str, images: list[str]) -> np.ndarray:
    """``(seeds, images)`` values of ``metric``, seeds in ascending order."""
    return np.array([[seeds[s][i][metric] for i in images] for s in sorted(seeds)], dtype=float)


def arm_components(values: np.ndarray) -> tuple[float, float]:
    """``(s_u^2, s_e^2)`` of one arm from its ``(seeds, images)`` values (seeds >= 2,
    images >= 2), by the method of moments of the module docstring."""
    n_seeds, n_images = values.shape
    if n_seeds < 2 or n_images < 2:
        raise ValueError(f"need two or more seeds and images, got {values.shape}")
    within = float(values.var(axis=0, ddof=1).mean())
    of_means = float(values.mean(axis=1).var(ddof=1))
    per_image = max((within - of_means) * n_images / (n_images - 1), 0.0)
    return max(of_means - per_image / n_images, 0.0), per_image


def pooled_noise(matrices: list[np.ndarray]) -> TrainingNoise:
    """Components of every ``(seeds, images)`` matrix with two or more seeds, pooled with
    weights ``seeds - 1``."""
    usable = [m for m in matrices if m.shape[0] >= 2]
    if not usable:
        raise ValueError("no arm has two or more seeds: the training noise cannot be estimated")
    weights = np.array([m.shape[0] - 1 for m in usable], dtype=float)
    parts = np.array([arm_components(m) for m in usable])
    shared, per_image = (weights @ parts) / weights.sum()
    return TrainingNoise(float(shared), float(per_image), len(usable), int(weights.sum()))


def difference_variance(
    image_spread: float, noise: TrainingNoise, images: int, seeds_arm: int, seeds_reference: int
) -> tuple[float, float]:
    """``(images part, training part)`` of ``Var(D)`` for a design (module docstring)."""
    per_run = 1 / seeds_arm + 1 / seeds_reference
    return (image_spread + noise.per_image * per_run) / images, noise.shared * per_run


def detectable(variance: float) -> float:
    """Smallest true difference found with power ``POWER`` by a two-sided test at ``ALPHA``."""
    return float((norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER)) * math.sqrt(variance))


def comparisons(
    runs: list, reference: dict | list, metric: str
) -> tuple[list[dict], TrainingNoise]:
    """One record per arm with a tested reference other than itself, and the pooled noise."""
    by_arm: dict[Arm, list] = {}
    for run in runs:
        by_arm.setdefault(run.arm, []).append(run)
    seeds = {arm: rows_by_seed(arm_runs) for arm, arm_runs in by_arm.items()}
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
        f"Resolution of `{protocol}` ({metric}; `experiments/protocols/converged/resolution.py`, "
        "model and estimators in its docstring). Training noise pooled over "
        f"{noise.arms} arms ({noise.degrees_of_freedom} degrees of freedom): a run's shift "
        f"shared by all its images sd {math.sqrt(noise.shared):.4f}, the per-image rest sd "
        f"{math.sqrt(noise.per_image):.4f}. SE: standard error of the paired difference, from "
        "the test images (what the report's bootstrap measures) and from the training seeds "
        f"(what it leaves out). Detectable: the smallest true difference found with power "
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
    (args.out / "resolution.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(records, noise, args.metric, args.protocol)
    (args.out / "resolution.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
