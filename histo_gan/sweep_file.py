"""A W&B sweep YAML: reading and checking it, its trials and their commands and labels.

What ``histo-gan sweep`` (:mod:`histo_gan.sweep`, which runs the trials) and ``histo-gan
report`` (which lists a protocol's expected trials) both read; numpy and YAML only, so that the
report loads no model code.
"""

from __future__ import annotations

import itertools
import math
import shlex
import sys
from pathlib import Path

import numpy as np
import yaml

__all__ = ["DISTRIBUTIONS", "expand_trials", "load_sweep", "trial_command", "trial_label"]

DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform")


def load_sweep(path: Path) -> dict:
    """A sweep YAML, checked: its method, parameters and distributions."""
    if not path.is_file():
        raise ValueError(f"{path}: sweep file does not exist")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(spec, dict) or "parameters" not in spec:
        raise ValueError(f"{path}: a sweep needs a 'parameters' mapping")
    method = spec.get("method", "grid")
    if method not in ("grid", "random"):
        raise ValueError(f"{path}: method {method!r} is not supported locally (grid or random)")
    for name, p in spec["parameters"].items():
        if not isinstance(p, dict) or not ({"value", "values"} & set(p) or "distribution" in p):
            raise ValueError(f"{path}: parameter {name!r} needs value, values or distribution")
        if "distribution" in p:
            if p["distribution"] not in DISTRIBUTIONS:
                raise ValueError(f"{path}: {name}: distribution must be one of {DISTRIBUTIONS}")
            if method == "grid":
                raise ValueError(f"{path}: {name}: grid search needs 'values', not a distribution")
    return spec


def _draw(p: dict, rng: np.random.Generator):
    if "value" in p:
        return p["value"]
    if "values" in p:
        return p["values"][int(rng.integers(len(p["values"])))]
    lo, hi = p["min"], p["max"]
    if p["distribution"] == "uniform":
        return float(rng.uniform(lo, hi))
    if p["distribution"] == "int_uniform":
        return int(rng.integers(lo, hi + 1))
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def expand_trials(spec: dict, count: int | None = None, seed: int = 0) -> list[dict]:
    """The parameter assignments of a sweep: the full grid, or ``count`` random draws."""
    params = spec["parameters"]
    if spec.get("method", "grid") == "grid":
        names = list(params)
        choices = [p["values"] if "values" in p else [p["value"]] for p in params.values()]
        trials = [dict(zip(names, combo)) for combo in itertools.product(*choices)]
        return trials[:count] if count else trials
    if not count:
        raise ValueError("random search needs --count")
    rng = np.random.default_rng(seed)
    return [{name: _draw(p, rng) for name, p in params.items()} for _ in range(count)]


def trial_command(spec: dict, assignment: dict) -> list[str]:
    """The command of one trial, with W&B's ``${env}``, ``${program}`` and ``${args}`` filled."""
    args = [f"--{name}={value}" for name, value in assignment.items()]
    template = spec.get("command") or ["${env}", "${program}", "${args}"]
    command: list[str] = []
    for token in template:
        if token == "${env}":
            continue
        if token == "${program}":
            command += shlex.split(spec.get("program", "histo-gan"))
        elif token in ("${args}", "${args_no_hyphens}"):
            command += args if token == "${args}" else [a[2:] for a in args]
        else:
            command.append(token)
    if command and command[0] == "histo-gan":  # the console script of this environment
        command = [sys.executable, "-m", "histo_gan.cli", *command[1:]]
    return command


def trial_label(assignment: dict) -> str:
    """A readable folder name from a protocol trial's parameters: the stem of its ``config``,
    the stem of its split (``data.split.init_args.path``) and ``s<seed_everything>``
    (``real+hou_budget_4_s0``); ``collect_results.py`` collects each trial's run under it."""
    parts = []
    if "config" in assignment:
        parts.append(Path(str(assignment["config"])).stem)
    if "data.split.init_args.path" in assignment:
        parts.append(Path(str(assignment["data.split.init_args.path"])).stem)
    parts.append(f"s{assignment.get('seed_everything', 0)}")
    return "_".join(parts)
