"""``histo-gan report``: comparison tables and plots from finished test runs.

    histo-gan report RUN_DIR... --out results/ [--reference data=real] [--metrics aji,dice]
    histo-gan report --protocol experiments/results/cpu/protocol.yaml

A *run folder* is any folder holding ``test_metrics.json`` and ``test_metrics_per_image.csv``
(what ``histo-gan test`` writes), normally with the run's ``config.yaml`` and ``split.json``.
Folders are searched recursively below every path given; a folder with ``test_metrics.json``
but no per-image rows yet is an unfinished run and is left out (and named on the console).

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
    reference: {data: real}          # or a list of rules, see below
    bootstrap: {n: 2000, seed: 0, level: 0.95}
    arms:                            # overrides: runs matching a glob get these fields
      - {runs: [runs/loo_*], data: real-loo, budget: loo}
    plateau: ../learning_curve/budget.json   # see "Training budget"
    synthetic_sets:                  # see "Synthetic sets"
      hou: null
      pix2pixhd: [../cheng_daffgan/curve_pix2pixhd/stage1/plateau.json,
                  ../cheng_daffgan/curve_pix2pixhd/stage2/plateau.json]
    expected:                        # see "Expected runs"
      - {data: real+hou, budget: 4, seeds: [0, 1],
         command: "bash experiments/protocols/fit_test.sh ... --seed_everything {seed}"}
      - {sweep: ../../sweeps/label_budget_cpu.yaml, runs: runs}

**Reference.** The reference of an arm is the arm with the reference's fields replaced and
all other fields kept: ``{data: real}`` compares ``Segmenter | real+hou | 4`` with
``Segmenter | real | 4``. Give all three fields to compare every arm with one fixed arm. A
list of such rules is tried in order and the first that names a tested arm is used:
``[{data: real}, {data: real, budget: 4}]`` also compares a synthetic set alone (``hou | 0``:
there is no real-only arm without labels) with real only at 4 labels.

**Numbers.** For each arm and metric: the mean over seeds of the per-image mean of each seed
(the papers' per-image average) and the spread, the sample standard deviation over seeds
(empty with one seed). The paired difference against the reference: per image, the metric
averaged over the arm's seeds minus the same for the reference, averaged over the images both
were tested on. Its interval has two sources of noise (:mod:`histo_gan.metrics.seed_noise`):
which images were tested, by a percentile bootstrap over those images, and the shift of a
whole training run shared by all its test images, which no resampling of images sees. The
shift's variance ``s_u^2`` is pooled over the arms with two or more seeds; each bootstrap
resample then adds a normal draw of sd ``s_u * sqrt(1/seeds + 1/reference seeds)``, and the
interval is the percentile interval of the sums. ``<metric>_low`` / ``<metric>_high``, the
interval of an arm's mean, do the same with ``sd = s_u / sqrt(seeds)``. Where no arm has two
seeds the shift cannot be estimated and the intervals are over images alone; ``table.md``
says which under the table, with the sd per metric. ``table.csv`` keeps the images-only
intervals too (``<metric>_diff_images_low`` / ``_high``) and the shift's sd that was added
(``<metric>_diff_run_sd``, ``<metric>_run_sd``). Every bootstrap draws ``n`` resamples from
``numpy.random.default_rng(seed)``, restarted for every interval (the image indices first,
then the normal draws, so the images-only interval is the same with or without them).

**Training budget.** Every row states how long its segmenter trained, from each run's
``config.yaml``: ``trainer.max_steps`` when positive, else ``trainer.max_epochs *
data.patches_per_epoch // data.batch_size`` steps (the smaller of the two when both are set),
of ``data.batch_size`` patches (runs of one arm that differ are joined with ``/``). With a ``plateau`` file (the ``budget.json`` of
``experiments/protocols/learning_curve/collect.py``: ``budget``, ``flattened``, ``network``,
``patch_size``, ``batch_size``, ...), the ``plateau`` column says for each row:

- ``at plateau``: same network, patch size and batch as the curve, at least ``budget`` steps,
  and the curve flattened;
- ``below plateau``: same network, patch size and batch, fewer than ``budget`` steps (a
  budget-bound row: it measures how fast the segmenter starts to learn, not what the data is
  worth);
- ``unknown (...)``: no plateau file, another network, patch size or batch than the curve's
  (the reason in brackets), or a curve that has not flattened yet.

An arm is below plateau when any of its runs is, at plateau when all are. The network of a
run is ``SmpUnet <encoder_name> depth <encoder_depth>`` for the U-Net, else the class name of
``model.init_args.network`` (or of the model). ``fit min`` is the mean over the arm's runs of
the fit's wall time, from the ``trial.json`` that ``collect_results.py`` writes beside a run's
summaries (``fit_seconds``: a sweep trial's wall time over all its attempts minus its test);
empty where no run carries it. ``precision`` (``table.csv`` and ``runs.csv``) is what each
run's fit recorded in its ``summary_fit.json`` (the precision ``trainer.precision: null``
resolved to on its machine: bf16-mixed where the CPU or GPU has bf16 units, 32-true
elsewhere); ``table.md`` names it under the table, and names every row whose seeds trained
in different precisions. ``synthetic_export`` (``runs.csv``) is the fingerprint of the
synthetic dataset a run trained on, as its fit recorded it
(:meth:`histo_gan.data.synthetic.SyntheticDataset.fingerprint`); ``table.md`` names every row
whose seeds trained on different exports of their set (a generator trained again elsewhere
exports other samples, so their spread includes the generator's retraining).

**Synthetic sets.** A row trained on a synthetic set is only as good as the generator behind
it. ``synthetic_sets`` maps each set name (the ``NAME`` of ``data``, read from each run's
``config.yaml``, so arm overrides that rename ``data`` do not change it) to the
``plateau.json`` of its generator's learning curve
(``experiments/protocols/converged/gan_curve.py``), to a list of them (each stage of a
two-stage chain; each export of a set that was generated again, whose seeds then trained on
different exports), or to ``null`` for a set made without training (the initial ``hou``
patches). ``table.md`` then ends with one line per set its runs use, with each curve's verdict
(one verdict for all of a set's curves when they agree): ``flattened and settled``,
``flattened, not settled`` (or ``settling not measured`` for a curve file without ``settled``),
``not flattened`` (the curve's verdict, with its file), ``made without training``,
``no learning curve named``, or ``incomplete`` (a curve whose run stopped before its ``max_steps``
or ``max_epochs``, whatever its tail reads); a set that is not flattened and settled is marked
as such, so no one reads its rows as the method's converged result. A verdict that needed the
measure's noise (a trend or a spread beyond the tolerance that the noise explains:
``settled_by_noise``, or ``|improvement_over_tail|`` above ``tolerance``) says ``within its
measure's noise (sd ...)``: the measure saw no movement, which is not the same as a generator
that moved less than the tolerance.

**Expected runs.** ``expected`` lists what the protocol needs; the report is built from the
finished runs alone and writes ``missing.md`` (also printed) with every expected run that is
not there and the command that finishes it. Two kinds of entry:

- arm fields (any of ``model``, ``data``, ``budget``; an absent field matches any) with
  ``seeds`` and a ``command``: present when a run of a matching arm has that seed;
  ``{seed}``, ``{model}``, ``{data}`` and ``{budget}`` in the command are filled in;
- ``sweep`` (a sweep YAML) and ``runs`` (the folder its trials are collected into): every
  trial of the sweep is expected in ``runs/<label>`` (the folder name ``collect_results.py``
  gives it, :func:`histo_gan.sweep_file.trial_label`); the command runs the sweep (finished trials
  are skipped) and collects it, unless the entry gives its own ``command``. Below it,
  ``missing.md`` names the synthetic sets the missing trials read (the ``data.synthetic`` root
  of their configs, :func:`synthetic_root`) with the configs that name each and the newest
  curve ``synthetic_sets`` gives it: sets live on the machine that made them (``runs/``), so
  a new machine makes them again before their trials.

With ``expected`` set, ``table.md`` ends with the count of missing runs, and a protocol with
no finished run yet writes empty tables and ``missing.md``.

**Outputs** in ``out``: ``table.md``, ``table.csv`` (one row per arm), ``per_organ.csv``,
``runs.csv`` (which folder went where), ``missing.md`` (with ``expected``),
``budget_<metric>.png`` (metric against labeled images, one line per model and data source,
shaded: the 95% interval of each arm's mean described above; synthetic-only arms as
horizontal dashed lines) and ``organs_<metric>.png`` (per-organ means of each arm).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import yaml

from histo_gan.files import write_text_atomic
from histo_gan.metrics.seed_noise import pooled_noise
from histo_gan.sweep_file import expand_trials, load_sweep, trial_command, trial_label

__all__ = [
    "Arm",
    "Run",
    "Training",
    "arm_overrides",
    "build_table",
    "find_runs",
    "load_run",
    "main",
    "missing_runs",
    "plateau_status",
    "reference_arm",
    "reference_rules",
    "rows_by_seed",
    "runs_by_arm",
    "seed_matrix",
    "shared_shift_variance",
    "training_noise_sentence",
    "training_of",
    "write_report",
]

DEFAULT_METRICS = ("aji", "dice", "pq", "f1", "hausdorff")
ARM_FIELDS = ("model", "data", "budget")
RUN_FILES = ("test_metrics.json", "test_metrics_per_image.csv")
AT_PLATEAU, BELOW_PLATEAU, UNKNOWN = "at plateau", "below plateau", "unknown"


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
        return (
            self.model,
            self.data != "real",
            self.data,
            not numeric,
            int(self.budget) if numeric else 0,
            self.budget,
        )

    def __str__(self) -> str:
        return f"{self.model} | {self.data} | {self.budget}"


@dataclass(frozen=True)
class Training:
    """How long and at what size a run's segmenter trained (``None``: not in its config)."""

    steps: int | None
    batch_size: int | None
    patch_size: int | None
    network: str
    precision: str | None = None


@dataclass
class Run:
    """A finished test run: its arm, seed and per-image rows (``image_id``, ``organ``, metrics),
    its training budget and, when recorded, the fit's wall time in seconds."""

    path: Path
    arm: Arm
    seed: int
    rows: list[dict] = field(repr=False)
    training: Training = Training(None, None, None, "unknown")
    fit_seconds: float | None = None
    synthetic_set: str | None = None
    synthetic_export: str | None = None


def is_finished(path: Path) -> bool:
    """Whether ``path`` holds a finished test run (its summary and its per-image rows)."""
    return all((path / name).is_file() for name in RUN_FILES)


def find_runs(paths: list[Path]) -> list[Path]:
    """Finished run folders at or below each path, sorted, unique (see :func:`is_finished`)."""
    found: set[Path] = set()
    for path in paths:
        if (path / "test_metrics.json").is_file():
            found.add(path)
        elif path.is_dir():
            found.update(p.parent for p in path.rglob("test_metrics.json"))
        else:
            raise ValueError(f"{path}: not a folder")
    unfinished = sorted(p for p in found if not is_finished(p))
    for path in unfinished:
        print(f"report: {path} is not finished (no test_metrics_per_image.csv): left out")
    return sorted(found - set(unfinished))


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    content = yaml.safe_load(path.read_text())
    return content if isinstance(content, dict) else {}


def synthetic_set(config: dict) -> str | None:
    """The name of the synthetic set a run trained on (the last path component of
    ``data.synthetic``'s ``root``, ``synthetic`` when it has none); None without synthetic
    data (none configured, or ``synthetic_ratio`` 0)."""
    data_config = config.get("data") or {}
    synthetic = data_config.get("synthetic")
    if not synthetic or float(data_config.get("synthetic_ratio") or 0.0) <= 0:
        return None
    root = (synthetic.get("init_args") or {}).get("root", "") if isinstance(synthetic, dict) else ""
    return Path(str(root)).name or "synthetic"


def infer_arm(config: dict, split: dict) -> tuple[dict, int | None]:
    """Arm fields and seed of a run from its ``config.yaml`` and ``split.json`` contents."""
    model = str((config.get("model") or {}).get("class_path", "unknown")).rsplit(".", 1)[-1]
    model = model.removesuffix("Module") or model
    data_config = config.get("data") or {}
    ratio = float(data_config.get("synthetic_ratio") or 0.0)
    name = synthetic_set(config)
    if name is None:
        data = "real"
    else:
        data = name if ratio >= 1 else f"real+{name}"
    if ratio >= 1:
        budget = "0"
    else:
        budget = str(len(split["train"])) if "train" in split else "?"
    seed = config.get("seed_everything")
    if seed is None or isinstance(seed, bool):
        seed = data_config.get("seed")
    return {"model": model, "data": data, "budget": budget}, seed


def network_name(config: dict) -> str:
    """``SmpUnet resnet18 depth 4`` for the U-Net, else the network's (or model's) class name."""
    model = config.get("model") or {}
    network = (model.get("init_args") or {}).get("network")
    if not isinstance(network, dict):
        return str(model.get("class_path", "unknown")).rsplit(".", 1)[-1]
    name = str(network.get("class_path", "unknown")).rsplit(".", 1)[-1]
    if name != "SmpUnet":
        return name
    args = network.get("init_args") or {}
    return f"SmpUnet {args.get('encoder_name', 'resnet34')} depth {args.get('encoder_depth', 5)}"


def training_of(config: dict) -> Training:
    """Training steps (``max_steps`` when > 0, else ``max_epochs * patches_per_epoch //
    batch_size``; the smaller when both are set), batch, patch size and network of a run's
    ``config.yaml`` contents."""
    trainer, data = config.get("trainer") or {}, config.get("data") or {}
    batch, patches = data.get("batch_size"), data.get("patches_per_epoch")
    max_steps, max_epochs = trainer.get("max_steps"), trainer.get("max_epochs")
    limits = []  # Lightning stops at whichever limit comes first
    if isinstance(max_steps, int) and max_steps > 0:
        limits.append(max_steps)
    if isinstance(max_epochs, int) and max_epochs > 0 and patches and batch:
        limits.append(max_epochs * int(patches) // int(batch))
    steps = min(limits) if limits else None
    return Training(steps, batch, data.get("patch_size"), network_name(config))


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


def fit_summary(path: Path) -> dict:
    """The run's ``summary_fit.json`` (``{}`` when its fit wrote none)."""
    summary = path / "summary_fit.json"
    return json.loads(summary.read_text()) if summary.is_file() else {}


def run_precision(summary: dict, config: dict) -> str | None:
    """The precision a run's segmenter trained in: ``precision`` of its fit's summary (what
    the machine resolved ``trainer.precision: null`` to), else an explicit
    ``trainer.precision`` of its config, else None."""
    recorded = summary.get("precision")
    if recorded is not None:
        return str(recorded)
    configured = (config.get("trainer") or {}).get("precision")
    return None if configured is None else str(configured)


def _fit_seconds(path: Path) -> float | None:
    """``fit_seconds`` of the run's ``trial.json`` (written by collect_results.py), if any."""
    trial = path / "trial.json"
    if not trial.is_file():
        return None
    seconds = json.loads(trial.read_text()).get("fit_seconds")
    return float(seconds) if seconds is not None else None


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
    rows = _read_rows(path / "test_metrics_per_image.csv")
    summary = fit_summary(path)
    training = replace(training_of(config), precision=run_precision(summary, config))
    return Run(
        path,
        Arm(**fields),
        int(seed),
        rows,
        training,
        _fit_seconds(path),
        synthetic_set(config),
        summary.get("synthetic_fingerprint"),
    )


def arm_overrides(path: Path, rules: list[dict], base: Path) -> dict:
    """Fields of every protocol ``arms`` rule whose globs match ``path`` (later rules win)."""
    relative = os.path.relpath(path, base)
    merged: dict = {}
    for rule in rules:
        patterns = rule.get("runs", [])
        if any(fnmatch(relative, p) or fnmatch(relative, f"{p}/*") for p in patterns):
            merged.update({k: v for k, v in rule.items() if k != "runs"})
    return merged


# --- training budget against the learning-curve plateau --------------------------------------


def load_plateau(path: Path) -> dict:
    """A learning curve's ``budget.json``; it must name its budget, network, patch and batch."""
    if not path.is_file():
        raise ValueError(f"{path}: plateau file does not exist")
    plateau = json.loads(path.read_text())
    needed = ("budget", "flattened", "network", "patch_size", "batch_size")
    absent = [key for key in needed if key not in plateau]
    if absent:
        raise ValueError(f"{path}: plateau file lacks {absent}")
    return plateau


def plateau_status(training: Training, plateau: dict | None) -> str:
    """``at plateau``, ``below plateau`` or ``unknown (reason)`` (see the module docstring)."""
    if plateau is None:
        return UNKNOWN
    if training.steps is None:
        return f"{UNKNOWN} (no step budget in config.yaml)"
    for name, ours, theirs in (
        ("network", training.network, plateau["network"]),
        ("patch", training.patch_size, plateau["patch_size"]),
        ("batch", training.batch_size, plateau["batch_size"]),
    ):
        if ours != theirs:
            return f"{UNKNOWN} ({name} {ours}, curve {theirs})"
    if training.steps < plateau["budget"]:
        return BELOW_PLATEAU
    if not plateau["flattened"]:
        return f"{UNKNOWN} (curve not flattened)"
    return AT_PLATEAU


def _arm_status(statuses: list[str]) -> str:
    """Below plateau when any run is, at plateau when all are, else the first unknown."""
    if BELOW_PLATEAU in statuses:
        return BELOW_PLATEAU
    if all(s == AT_PLATEAU for s in statuses):
        return AT_PLATEAU
    return next(s for s in statuses if s != AT_PLATEAU)


def _joined(values) -> str:
    """Distinct known values, ascending, joined with ``/`` (``""`` when none is known)."""
    return "/".join(str(v) for v in sorted({v for v in values if v is not None}))


def training_columns(runs: list[Run], plateau: dict | None) -> dict:
    """The training columns of one arm's row: steps, batch, plateau status, fit minutes."""
    seconds = [r.fit_seconds for r in runs if r.fit_seconds is not None]
    return {
        "train_steps": _joined(r.training.steps for r in runs),
        "batch_size": _joined(r.training.batch_size for r in runs),
        "plateau": _arm_status([plateau_status(r.training, plateau) for r in runs]),
        "precision": _joined(r.training.precision for r in runs),
        "fit_minutes": float(np.mean(seconds)) / 60 if seconds else math.nan,
    }


# --- numbers ----------------------------------------------------------------------------


def runs_by_arm(runs: list[Run]) -> dict[Arm, list[Run]]:
    """``arm -> its runs``, in the order given."""
    by_arm: dict[Arm, list[Run]] = {}
    for run in runs:
        by_arm.setdefault(run.arm, []).append(run)
    return by_arm


def rows_by_seed(runs: list[Run]) -> dict[int, dict[str, dict]]:
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


def seed_matrix(seeds: dict[int, dict[str, dict]], metric: str, images: list[str]) -> np.ndarray:
    """``(seeds, images)`` values of ``metric`` from :func:`rows_by_seed`, seeds ascending."""
    return np.array([[seeds[s][i][metric] for i in images] for s in sorted(seeds)], dtype=float)


def _image_means(seeds: dict[int, dict[str, dict]], metric: str) -> dict[str, float]:
    """Per image: the metric averaged over seeds."""
    images = next(iter(seeds.values()))
    return {i: float(np.mean([seeds[s][i][metric] for s in seeds])) for i in images}


def bootstrap_mean(
    values: np.ndarray, n: int, seed: int, level: float, shift_sd: float = 0.0
) -> tuple[float, float]:
    """Percentile-bootstrap interval ``(low, high)`` of the mean of ``values``; with
    ``shift_sd > 0`` each resample's mean also gets a draw of ``Normal(0, shift_sd)`` (a
    shift common to all values that resampling them cannot see)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(1)
    if shift_sd > 0:
        means = means + rng.normal(0.0, shift_sd, size=n)
    low, high = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def paired_difference(
    arm: dict[str, float],
    reference: dict[str, float],
    n: int,
    seed: int,
    level: float,
    shift_sd: float = 0.0,
) -> tuple[float, float, float, int]:
    """Mean over shared images of ``arm - reference`` and its percentile-bootstrap interval.

    Args:
        arm, reference: per-image values (already averaged over seeds).
        shift_sd: sd of the difference's training-run shift, added to every resample
            (:func:`bootstrap_mean`); 0 for an interval over images alone.
    Returns:
        ``(difference, low, high, number of shared images)``; NaNs when none are shared.
    """
    shared = sorted(set(arm) & set(reference))
    if not shared:
        return math.nan, math.nan, math.nan, 0
    d = np.array([arm[i] - reference[i] for i in shared])
    return (float(d.mean()), *bootstrap_mean(d, n, seed, level, shift_sd), len(shared))


def shared_shift_variance(
    seeds_by_arm: Iterable[dict[int, dict[str, dict]]], metric: str
) -> tuple[float, int]:
    """``(s_u^2, arms pooled)``: the variance of a run's shift shared by all its test images,
    pooled over the arms (each as :func:`rows_by_seed` gives it) with two or more seeds and
    images; ``(nan, 0)`` when there is none."""
    repeated = [s for s in seeds_by_arm if len(s) >= 2 and len(next(iter(s.values()))) >= 2]
    if not repeated:
        return math.nan, 0
    matrices = [seed_matrix(s, metric, sorted(next(iter(s.values())))) for s in repeated]
    return pooled_noise(matrices).shared, len(repeated)


def reference_rules(reference: dict | list[dict]) -> list[dict]:
    """The protocol's ``reference`` as a list of rules (anything but a list: a list of one,
    so a malformed value reaches the caller's check as one rule)."""
    return list(reference) if isinstance(reference, list) else [reference]


def reference_arm(arm: Arm, reference: dict | list[dict], tested: Iterable[Arm]) -> Arm:
    """The arm that ``arm`` is compared with: the first rule whose arm was tested, else the
    first rule's arm (which then has no runs, and the row no difference)."""
    candidates = [arm.replace(**rule) for rule in reference_rules(reference)]
    return next((c for c in candidates if c in tested), candidates[0])


def build_table(
    runs: list[Run],
    metrics: list[str],
    reference: dict | list[dict],
    n_bootstrap: int = 2000,
    bootstrap_seed: int = 0,
    level: float = 0.95,
    plateau: dict | None = None,
) -> tuple[list[dict], list[dict]]:
    """One row per arm (see the module docstring) and per-organ rows ``(arm, organ, metrics)``.

    ``plateau``: a learning curve's ``budget.json`` contents (:func:`load_plateau`), or None.
    """
    by_arm = runs_by_arm(runs)
    arms = sorted(by_arm, key=Arm.sort_key)
    seeds = {arm: rows_by_seed(by_arm[arm]) for arm in arms}
    for metric in metrics:
        for arm in arms:
            for images in seeds[arm].values():
                if any(metric not in row for row in images.values()):
                    raise ValueError(f"arm '{arm}': metric {metric!r} is missing in its runs")
    shift = {metric: shared_shift_variance(seeds.values(), metric)[0] for metric in metrics}
    rows, organ_rows = [], []
    for arm in arms:
        ref = reference_arm(arm, reference, seeds)
        row: dict = {
            **arm.__dict__,
            "seeds": len(seeds[arm]),
            "images": len(next(iter(seeds[arm].values()))),
            **training_columns(by_arm[arm], plateau),
            "reference": "" if ref not in seeds else ("self" if ref == arm else str(ref)),
        }
        for metric in metrics:
            per_seed = [
                np.mean([r[metric] for r in images.values()]) for images in seeds[arm].values()
            ]
            row[f"{metric}_mean"] = float(np.mean(per_seed))
            row[f"{metric}_spread"] = (
                float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan
            )
            known = math.isfinite(shift[metric])
            run_sd = math.sqrt(shift[metric] / len(seeds[arm])) if known else math.nan
            per_image = np.array(list(_image_means(seeds[arm], metric).values()))
            row[f"{metric}_low"], row[f"{metric}_high"] = bootstrap_mean(
                per_image, n_bootstrap, bootstrap_seed, level, run_sd if known else 0.0
            )
            row[f"{metric}_run_sd"] = run_sd
            difference = images_only = (math.nan, math.nan, math.nan, 0)
            diff_sd = math.nan
            if ref in seeds and ref != arm:
                pair = (_image_means(seeds[arm], metric), _image_means(seeds[ref], metric))
                images_only = paired_difference(*pair, n_bootstrap, bootstrap_seed, level)
                difference = images_only
                if known:
                    diff_sd = math.sqrt(shift[metric] * (1 / len(seeds[arm]) + 1 / len(seeds[ref])))
                    difference = paired_difference(
                        *pair, n_bootstrap, bootstrap_seed, level, diff_sd
                    )
            for suffix, value in zip(("diff", "diff_low", "diff_high"), difference[:3]):
                row[f"{metric}_{suffix}"] = value
            row[f"{metric}_diff_images_low"], row[f"{metric}_diff_images_high"] = images_only[1:3]
            row[f"{metric}_diff_run_sd"] = diff_sd
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


# --- synthetic sets against their generators' curves -------------------------------------


def synthetic_set_notes(set_names: Iterable[str], sets: dict, base: Path) -> list[str]:
    """One markdown line per synthetic set in ``set_names`` (see "Synthetic sets").

    ``set_names``: the sets the table's runs trained on (:func:`synthetic_set`; repeats are
    fine). ``sets``: set name -> path of its generator curve's ``plateau.json`` relative to
    ``base``, a list of such paths (every stage of a chain, every export the runs used), or
    None for a set made without training.
    """
    lines = []
    for name in sorted(set(set_names)):
        if name not in sets:
            lines.append(f"- `{name}`: **no learning curve named**")
            continue
        if sets[name] is None:
            lines.append(f"- `{name}`: made without training")
            continue
        paths = [sets[name]] if isinstance(sets[name], str) else list(sets[name])
        verdicts = [(curve_verdict(base / path, name), Path(path).as_posix()) for path in paths]
        if len({verdict for verdict, _ in verdicts}) == 1:  # one verdict, all its files
            lines.append(f"- `{name}`: {verdicts[0][0]} ({', '.join(p for _, p in verdicts)})")
        else:
            lines.append(f"- `{name}`: " + "; ".join(f"{v} ({p})" for v, p in verdicts))
    return lines


def curve_verdict(path: Path, set_name: str) -> str:
    """What one generator curve's ``plateau.json`` says (see "Synthetic sets"); bold unless
    flattened and settled on its own tolerance."""
    if not path.is_file():
        raise ValueError(f"{path}: the learning curve named for set {set_name!r} does not exist")
    curve = json.loads(path.read_text())
    if "flattened" not in curve:
        raise ValueError(f"{path}: not a learning curve's plateau.json (no 'flattened')")
    if curve.get("complete") is False:
        stopped = (
            f"stopped at step {curve['trained_steps']} of {curve['max_steps']}"
            if "max_steps" in curve
            else f"stopped in epoch {curve['trained_epochs']} of {curve['max_epochs']}"
        )
        return f"**generator curve incomplete, {stopped}**"
    by_noise = curve.get("settled_by_noise") or (
        abs(curve.get("improvement_over_tail", 0.0)) > curve.get("tolerance", math.inf)
    )
    if curve["flattened"] and curve.get("settled") and by_noise:
        return (
            "**generator curve flattened and settled within its measure's noise "
            f"(sd {curve['noise_sd']:.2g})**"
        )
    if curve["flattened"] and curve.get("settled"):
        return "generator curve flattened and settled"
    if curve["flattened"] and "settled" not in curve:
        return "**generator curve flattened, settling not measured**"
    if curve["flattened"]:
        return "**generator curve flattened, not settled**"
    return "**generator curve not flattened**"


# --- expected runs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """What one ``expected`` entry still lacks: the missing seeds or trial labels, of how many
    expected, and the command that finishes each (one per item, or one for all)."""

    what: str
    items: tuple[str, ...]
    expected: int
    commands: tuple[str, ...]
    synthetic_sets: tuple[str, ...] = ()  # one line per set its missing trials read


def _repo_relative(path: Path) -> str:
    """``path`` relative to the repository above it (the folder with ``pyproject.toml``)."""
    root = _repo_root(path)
    if (root / "pyproject.toml").is_file():
        return path.resolve().relative_to(root).as_posix()
    return path.as_posix()


def _fill(command: str, fields: dict) -> str:
    """``command`` with ``{seed}``, ``{model}``, ``{data}`` and ``{budget}`` filled in."""
    for key, value in fields.items():
        command = command.replace(f"{{{key}}}", str(value))
    return command


def _missing_seeds(entry: dict, runs: list[Run]) -> Missing:
    """An arm entry: the seeds that no run of a matching arm has."""
    fields = {k: str(entry[k]) for k in ARM_FIELDS if k in entry}
    if "seeds" not in entry or "command" not in entry:
        raise ValueError(f"expected entry {entry}: an arm entry needs 'seeds' and 'command'")
    present = {r.seed for r in runs if all(getattr(r.arm, k) == v for k, v in fields.items())}
    missing = [int(s) for s in entry["seeds"] if int(s) not in present]
    what = ", ".join(f"{k}={v}" for k, v in fields.items()) or "every arm"
    commands = [_fill(entry["command"], {**fields, "seed": s}) for s in missing]
    return Missing(
        what,
        tuple(f"seed {s}" for s in missing),
        len(entry["seeds"]),
        tuple(dict.fromkeys(commands)),
    )


def _repo_root(path: Path) -> Path:
    """The repository above ``path`` (the folder with ``pyproject.toml``), else its parent."""
    resolved = path.resolve()
    return next((p for p in resolved.parents if (p / "pyproject.toml").is_file()), resolved.parent)


def _option_values(command: list[str], option: str) -> list[str]:
    """The values given to ``option`` in ``command``, as ``--option value`` or ``--option=value``."""
    values = []
    for i, token in enumerate(command):
        if token == option and i + 1 < len(command):
            values.append(command[i + 1])
        elif token.startswith(f"{option}="):
            values.append(token.split("=", 1)[1])
    return values


def _dig(tree, *keys):
    """``tree[k1][k2]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def synthetic_root(command: list[str], repo: Path) -> tuple[str, str] | None:
    """``(root, where it is set)`` of the synthetic set a trial's fit reads, or None.

    The last ``--config`` (relative to ``repo``) that sets ``data.synthetic`` decides, as in
    the fit's own parsing (``synthetic: null`` there: no set); a
    ``--data.synthetic.init_args.root`` argument overrides them all. A config that cannot be
    read is skipped (the trial itself will name it).
    """
    found = None
    for config in _option_values(command, "--config"):
        try:
            data = _dig(_read_yaml(repo / config), "data")
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and "synthetic" in data:  # a later config may unset it
            root = _dig(data, "synthetic", "init_args", "root")
            found = (str(root), config) if root else None
    override = _option_values(command, "--data.synthetic.init_args.root")
    return (override[-1], "its command") if override else found


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``{key: [values in order]}`` of ``(key, value)`` pairs."""
    groups: dict[str, list[str]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return groups


def _set_lines(found: Iterable[tuple[str, str]], sets: dict, base: Path) -> tuple[str, ...]:
    """One line per synthetic set root in ``found`` (``(root, config)`` pairs): the configs
    that name it and, where the protocol's ``synthetic_sets`` names its generator's curves, the
    newest of them (its folder's README holds the commands that made the set)."""
    lines = []
    for root, configs in _grouped(found).items():
        line = f"- `{root}` (named by {', '.join(configs)})"
        curves = sets.get(Path(root).name)
        if curves:
            newest = curves[-1] if isinstance(curves, list) else curves
            line += f"; generator curve: {_repo_relative(base / newest)}"
        lines.append(line)
    return tuple(lines)


def _missing_trials(entry: dict, base: Path, sets: dict) -> Missing:
    """A sweep entry: the sweep's trials without a finished run in ``runs/<label>``."""
    if "runs" not in entry:
        raise ValueError(f"expected entry {entry}: a sweep entry needs 'runs' (its folder)")
    sweep, folder = base / entry["sweep"], base / entry["runs"]
    spec = load_sweep(sweep)
    trials = expand_trials(spec, entry.get("count"), entry.get("seed", 0))
    labels = [trial_label(t) for t in trials]
    missing = [label for label in labels if not is_finished(folder / label)]
    repo = _repo_root(sweep)
    roots = [
        synthetic_root(trial_command(spec, trial), repo)
        for trial, label in zip(trials, labels)
        if label in missing
    ]
    command = entry.get("command") or (
        f"histo-gan sweep {_repo_relative(sweep)} --parallel 2 && "
        f"python experiments/protocols/collect_results.py {_repo_relative(folder)} "
        f"--sweep runs/sweeps/{sweep.stem}"
    )
    what = f"sweep {_repo_relative(sweep)} into {_repo_relative(folder)}"
    return Missing(
        what,
        tuple(missing),
        len(labels),
        (command,) if missing else (),
        _set_lines(dict.fromkeys(found for found in roots if found), sets, base),
    )


def missing_runs(
    expected: list[dict], runs: list[Run], base: Path, sets: dict | None = None
) -> list[Missing]:
    """What each protocol ``expected`` entry lacks (see the module docstring); ``sets``: the
    protocol's ``synthetic_sets``, to name the curve of each set that missing trials read."""
    return [
        _missing_trials(entry, base, sets or {})
        if "sweep" in entry
        else _missing_seeds(entry, runs)
        for entry in expected
    ]


def missing_markdown(missing: list[Missing]) -> str:
    """``missing.md``: the count, then per entry the missing items and their commands."""
    total = sum(m.expected for m in missing)
    absent = sum(len(m.items) for m in missing)
    if not absent:
        return f"All {total} expected runs are finished.\n"
    lines = [
        f"{absent} of {total} expected runs are missing; the tables hold the finished "
        "runs only. Each command below finishes what its entry lacks.",
        "",
    ]
    for entry in missing:
        if not entry.items:
            continue
        lines += [
            f"## {entry.what}: {len(entry.items)} of {entry.expected} missing",
            "",
            ", ".join(entry.items),
            "",
        ]
        lines += [f"    {command}" for command in entry.commands] + [""]
        if entry.synthetic_sets:
            lines += [
                "Synthetic sets these trials read, to be made before them on the machine "
                "that runs them (each config's header says how; a curve's README has the "
                "commands that made the set it names):",
                "",
                *entry.synthetic_sets,
                "",
            ]
    return "\n".join(lines)


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


def plateau_sentence(plateau: dict | None) -> str:
    """The table's note on the learning-curve plateau the ``plateau`` column is read against."""
    if plateau is None:
        return "Plateau: unknown (the protocol names no learning-curve budget.json)."
    state = "flattened" if plateau["flattened"] else "not flattened yet"
    return (
        f"Plateau: {plateau['budget']} steps x {plateau['batch_size']} patches of "
        f"{plateau['patch_size']} px for {plateau['network']} (learning curve {state}); "
        "rows below it are budget-bound."
    )


def markdown_table(
    rows: list[dict],
    metrics: list[str],
    reference: dict | list[dict],
    bootstrap: dict,
    plateau: dict | None = None,
) -> str:
    """The main table: budget, plateau, ``mean ± spread`` and ``difference [low, high]``."""
    rules = [", ".join(f"{k}={v}" for k, v in r.items()) for r in reference_rules(reference)]
    rule = " (where that was not tested: with ".join(rules) + ")" * (len(rules) - 1)
    header = ["model", "data", "budget", "seeds", "images", "steps x batch", "plateau", "fit min"]
    for metric in metrics:
        header += [metric, f"Δ{metric} [{bootstrap['level']:.0%} CI]"]
    lines = [
        f"Reference of each arm: the same arm with {rule}. Values: mean ± sample standard "
        "deviation over seeds of the per-image mean. Δ: per-image paired difference to the "
        "reference (averaged over seeds); its interval: percentile bootstrap over images "
        f"(n={bootstrap['n']}, seed={bootstrap['seed']}) plus a training run's shift where "
        "it can be estimated (see below the table). Steps x batch: the segmenter's "
        f"training budget. {plateau_sentence(plateau)}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * 3 + "---:|" * 3 + "---|" + "---:|" * (len(header) - 7),
    ]
    for row in rows:
        steps = f"{row['train_steps']} x {row['batch_size']}" if row["train_steps"] else ""
        minutes = "" if math.isnan(row["fit_minutes"]) else f"{row['fit_minutes']:.1f}"
        cells = [
            row["model"],
            row["data"],
            row["budget"],
            str(row["seeds"]),
            str(row["images"]),
            steps,
            row["plateau"],
            minutes,
        ]
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


def training_noise_sentence(runs: list[Run], metrics: list[str]) -> str:
    """The table's note on the training noise in its intervals: per metric, the sd of a run's
    shift shared by all its test images, pooled over the arms with two or more seeds
    (:func:`shared_shift_variance`), which every interval includes; or that the intervals are
    over images alone because no arm has two seeds."""
    if not runs:
        return ""
    seeds = [rows_by_seed(arm_runs) for arm_runs in runs_by_arm(runs).values()]
    parts, pooled = [], 0
    for metric in metrics:
        variance, pooled = shared_shift_variance(seeds, metric)
        if not pooled:
            return (
                "Training noise: no arm has two seeds, so the shift of a training run shared by "
                "all its test images is not estimated and the intervals resample images only; "
                "they are too narrow by that shift.\n"
            )
        parts.append(f"{metric} {math.sqrt(variance):.4f}")
    arms = f"{pooled} arm{'s' * (pooled > 1)}"
    return (
        "Training noise in the intervals: besides the images they resample, each adds a run's "
        f"shift shared by all its test images, sd {', '.join(parts)} (pooled over {arms} with "
        "two or more seeds; histo_gan.metrics.seed_noise), as sd·√(1/seeds + 1/reference "
        "seeds) for a Δ and sd/√seeds for a mean.\n"
    )


def precision_sentence(rows: list[dict]) -> str:
    """The table's note on training precision: the one every run recorded, or the rows whose
    seeds trained in different precisions (a numerics difference their spread includes);
    ``""`` when no run recorded one."""
    known = sorted({p for row in rows for p in row["precision"].split("/") if p})
    if not known:
        return ""
    mixed = [
        f"{row['data']} {row['budget']} ({row['precision']})"
        for row in rows
        if "/" in row["precision"]
    ]
    if mixed:
        return (
            f"Training precision differs between the seeds of: {', '.join(mixed)}; their "
            "spread includes that difference.\n"
        )
    return f"Training precision: {', '.join(known)} (as each run recorded it).\n"


def export_sentence(runs: list[Run]) -> str:
    """The table's note on rows whose seeds trained on different exports of their synthetic
    set (fingerprints as the runs recorded them); ``""`` when there is none."""
    exports: dict[Arm, set[str]] = {}
    for run in runs:
        if run.synthetic_export is not None:
            exports.setdefault(run.arm, set()).add(run.synthetic_export)
    mixed = [
        f"{arm.data} {arm.budget} ({', '.join(sorted(found))})"
        for arm, found in sorted(exports.items(), key=lambda item: item[0].sort_key())
        if len(found) > 1
    ]
    if not mixed:
        return ""
    return (
        f"Seeds trained on different exports of their synthetic set: {'; '.join(mixed)}; "
        "their spread includes the generator's retraining.\n"
    )


def _budget_lines(rows: list[dict]) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """Rows by data source: ``(label -> rows at labeled budgets, label -> synthetic-only row)``."""
    models = {row["model"] for row in rows}
    lines: dict[str, list[dict]] = {}
    flat: dict[str, dict] = {}
    for row in rows:
        label = row["data"] if len(models) == 1 else f"{row['model']} | {row['data']}"
        if row["budget"].isdigit() and int(row["budget"]) > 0:
            lines.setdefault(label, []).append(row)
        elif row["budget"] == "0":
            flat[label] = row
    return lines, flat


def plot_budgets(rows: list[dict], metric: str, path: Path, level: float = 0.95) -> bool:
    """Metric against labeled images, one line per data source (and model, when the rows hold
    more than one), shaded and with error bars: the interval of each arm's mean over test
    images and training runs (``<metric>_low`` / ``_high``); the lines are shifted a little
    sideways so that their bars do not hide each other. Synthetic-only arms (budget 0):
    horizontal dashed lines. False (and no file) when no budget is numeric and positive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines, flat = _budget_lines(rows)
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = plt.get_cmap("tab10" if len(lines) + len(flat) <= 10 else "tab20").colors
    budgets = sorted({int(r["budget"]) for points in lines.values() for r in points})
    for k, (label, points) in enumerate(lines.items()):
        points = sorted(points, key=lambda r: int(r["budget"]))
        shift = 2 ** (0.025 * (k - (len(lines) - 1) / 2))  # side by side, not on top
        x = [int(r["budget"]) * shift for r in points]
        mean = [r[f"{metric}_mean"] for r in points]
        low = [r[f"{metric}_low"] for r in points]
        high = [r[f"{metric}_high"] for r in points]
        color = colors[k % len(colors)]
        ax.plot(x, mean, marker="o", color=color, label=label)
        ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
        ax.errorbar(
            x,
            mean,
            yerr=[np.subtract(mean, low), np.subtract(high, mean)],
            color=color,
            ls="none",
            capsize=2,
            lw=0.8,
        )
    for k, (label, row) in enumerate(flat.items(), start=len(lines)):
        ax.axhline(
            row[f"{metric}_mean"],
            ls="--",
            lw=1,
            color=colors[k % len(colors)],
            label=f"{label} (synthetic only)",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("labeled training images")
    ax.set_ylabel(f"test {metric}: mean, {level:.0%} bootstrap CI over images")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
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
        values = {
            r["organ"]: r[metric]
            for r in organ_rows
            if str(Arm(r["model"], r["data"], r["budget"])) == arm
        }
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
    reference: dict | list[dict],
    bootstrap: dict,
    base: Path,
    plots: bool = True,
    plateau: dict | None = None,
    missing: list[Missing] | None = None,
    synthetic_sets: dict | None = None,
) -> tuple[list[dict], str]:
    """Write every output file into ``out``; returns the table rows and the markdown.

    ``missing`` (from :func:`missing_runs`): written to ``missing.md`` and counted at the end
    of ``table.md``; None when the protocol expects nothing. ``synthetic_sets``: the
    protocol's (see "Synthetic sets"), None for no notes.
    """
    rows, organ_rows = build_table(
        runs, metrics, reference, bootstrap["n"], bootstrap["seed"], bootstrap["level"], plateau
    )
    markdown = markdown_table(rows, metrics, reference, bootstrap, plateau)
    if noise := training_noise_sentence(runs, metrics):
        markdown += "\n" + noise
    if precision := precision_sentence(rows):
        markdown += "\n" + precision
    if exports := export_sentence(runs):
        markdown += "\n" + exports
    if synthetic_sets is not None:
        used = [run.synthetic_set for run in runs if run.synthetic_set is not None]
        notes = synthetic_set_notes(used, synthetic_sets, base)
        if notes:
            markdown += "\nSynthetic sets of these rows and their generators:\n\n"
            markdown += "\n".join(notes) + "\n"
    if missing is not None:
        absent = sum(len(m.items) for m in missing)
        markdown += f"\n{absent} of {sum(m.expected for m in missing)} expected runs missing"
        markdown += " (see missing.md).\n" if absent else ".\n"
        write_text_atomic(out / "missing.md", missing_markdown(missing))
    write_text_atomic(out / "table.md", markdown)
    write_text_atomic(out / "table.csv", _csv_text(rows))
    write_text_atomic(out / "per_organ.csv", _csv_text(organ_rows))
    run_rows = [
        {
            **r.arm.__dict__,
            "seed": r.seed,
            "images": len(r.rows),
            "precision": r.training.precision or "",
            "synthetic_export": r.synthetic_export or "",
            "path": Path(os.path.relpath(r.path, base)).as_posix(),
        }
        for r in sorted(runs, key=lambda r: (r.arm.sort_key(), r.seed, str(r.path)))
    ]
    write_text_atomic(out / "runs.csv", _csv_text(run_rows))
    if plots:
        for metric in metrics:
            plot_budgets(rows, metric, out / f"budget_{metric}.png", bootstrap["level"])
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
        prog="histo-gan report",
        description="Comparison tables and plots from test runs.",
        epilog="The arm, reference and statistics rules: see `python -m pydoc histo_gan.report`.",
    )
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
    reference = (
        _parse_reference(args.reference)
        if args.reference
        else protocol.get("reference", {"data": "real"})
    )
    for rule in reference_rules(reference):
        if not isinstance(rule, dict) or not set(rule) <= set(ARM_FIELDS):
            raise ValueError(
                f"{args.protocol}: 'reference' must be a mapping of {ARM_FIELDS} to values, or a "
                f"list of such mappings, got {reference!r}"
            )
    expected = protocol.get("expected")
    paths = list(args.runs) or [
        p for pattern in protocol.get("runs", []) for p in sorted(base.glob(pattern))
    ]
    if not paths and expected is None:
        raise ValueError("no run folders given (arguments or the protocol's 'runs')")
    out = args.out or (base / protocol["out"] if "out" in protocol else None)
    if out is None:
        raise ValueError("--out is required without a protocol 'out'")
    metrics = (
        args.metrics.split(",") if args.metrics else list(protocol.get("metrics", DEFAULT_METRICS))
    )
    bootstrap = {"n": 2000, "seed": 0, "level": 0.95, **protocol.get("bootstrap", {})}
    if args.n_bootstrap is not None:
        bootstrap["n"] = args.n_bootstrap
    if args.seed is not None:
        bootstrap["seed"] = args.seed
    plateau = load_plateau(base / protocol["plateau"]) if protocol.get("plateau") else None

    rules = protocol.get("arms", [])
    runs = [load_run(p, arm_overrides(p, rules, base)) for p in find_runs(paths)]
    if not runs and expected is None:
        raise ValueError(f"no run folders with test_metrics.json under {[str(p) for p in paths]}")
    sets = protocol.get("synthetic_sets")
    missing = missing_runs(expected, runs, base, sets) if expected is not None else None
    _, markdown = write_report(
        runs,
        out,
        metrics,
        reference,
        bootstrap,
        base,
        not args.no_plots,
        plateau,
        missing,
        protocol.get("synthetic_sets"),
    )
    print(markdown)
    if missing is not None:
        print(missing_markdown(missing))
    print(f"{len(runs)} runs -> {out}/table.md, table.csv, per_organ.csv, runs.csv and plots")
    return 0
