"""``histo-gan sweep``: run a W&B sweep YAML locally, without a W&B server.

W&B sweeps need a server to hand out trials; this runner reads the same YAML (``method``
``grid`` or ``random``, ``metric``, ``parameters``, ``command``) and runs the trials one after
the other as subprocesses. It prints a leaderboard and writes ``sweep_results.csv`` and
``sweep_results.json``, which name every trial's command and run folder.

A trial is identified by its full command and, for ``histo-gan`` commands, the config it
resolves to (``--print_config``): editing the sweep's ``command`` or a config it reads makes
new trials, never stale results. Each trial is a run of its own (config, split, checkpoints
and ``summary_fit.json`` in its run folder); its summary is also kept as
``trial_<id>.json``, and trials that already have one are skipped, so an interrupted sweep
resumes where it stopped. With a server, the same file works with ``wandb sweep`` +
``wandb agent``.

Supported parameter specs: ``{value: v}``, ``{values: [...]}``, ``{distribution: uniform |
log_uniform_values | int_uniform, min, max}`` (random search only for distributions).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from histo_gan.files import write_text_atomic

__all__ = ["expand_trials", "main", "resolved_config", "trial_command", "trial_id"]

DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform")


def _load_sweep(path: Path) -> dict:
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


def resolved_config(command: list[str]) -> str:
    """The config a ``histo-gan`` Lightning command resolves to, else ``""``."""
    if command[1:3] != ["-m", "histo_gan.cli"] or len(command) < 4:
        return ""
    if command[3] not in ("fit", "validate", "test", "predict"):
        return ""
    from histo_gan.cli import lightning_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        lightning_main([*command[3:], "--print_config"])
    return out.getvalue()


def trial_id(command: list[str], config: str) -> str:
    """Identity of a trial: its full command and resolved config."""
    text = json.dumps({"command": command[1:], "config": config})
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="histo-gan sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="W&B sweep YAML")
    parser.add_argument("--out", type=Path, default=Path("runs/sweeps"), help="results folder")
    parser.add_argument("--count", type=int, default=None, help="number of trials")
    parser.add_argument("--seed", type=int, default=0, help="seed of random search")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    spec = _load_sweep(args.sweep)
    trials = expand_trials(spec, args.count, args.seed)
    metric = spec.get("metric", {}).get("name")
    goal = spec.get("metric", {}).get("goal", "maximize")
    out = args.out / args.sweep.stem
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for number, assignment in enumerate(trials, start=1):
        command = trial_command(spec, assignment)
        trial = trial_id(command, resolved_config(command))
        summary_path = out / f"trial_{trial}.json"
        console.print(f"[bold]trial {number}/{len(trials)}[/bold] {trial}: {assignment}")
        console.print("  " + shlex.join(command))
        if args.dry_run:
            continue
        record = {"trial": trial, **assignment, "command": shlex.join(command)}
        if not summary_path.exists():
            env = dict(os.environ, HISTO_GAN_SUMMARY=str(summary_path))
            env.setdefault("WANDB_MODE", "offline")
            code = subprocess.call(command, env=env)
            if code != 0 or not summary_path.exists():
                console.print(f"  [red]failed with exit code {code}[/red]")
                results.append({**record, "status": f"failed ({code})"})
                continue
        summary = json.loads(summary_path.read_text())
        results.append({**record, "status": "ok", "run_dir": summary.get("run_dir"), **summary})
    if args.dry_run or not results:
        return 0
    ok = [r for r in results if r["status"] == "ok" and metric in r]
    ok.sort(key=lambda r: r[metric], reverse=(goal == "maximize"))
    table = Table(title=f"{args.sweep.name}: {metric} ({goal})")
    columns = ["trial", *spec["parameters"], metric, "run_dir"]
    for column in columns:
        table.add_column(str(column))
    for row in ok + [r for r in results if r not in ok]:
        table.add_row(*(_format(row.get(c, row["status"])) for c in columns))
    console.print(table)
    keys = sorted({k for r in results for k in r}, key=lambda k: (k not in columns, k))
    table_csv = io.StringIO()
    writer = csv.DictWriter(table_csv, fieldnames=keys)
    writer.writeheader()
    writer.writerows(results)
    write_text_atomic(out / "sweep_results.csv", table_csv.getvalue())
    write_text_atomic(out / "sweep_results.json", json.dumps(results, indent=2, default=str))
    return 0 if len(ok) == len(results) else 1
