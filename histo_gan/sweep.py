"""``histo-gan sweep``: run a W&B sweep YAML locally, without a W&B server.

    histo-gan sweep experiments/sweeps/label_budget_cpu.yaml [--parallel 2] [--out runs/sweeps]

W&B sweeps need a server to hand out trials; this runner reads the same YAML (``method``
``grid`` or ``random``, ``metric``, ``parameters``, ``command``) and runs the trials as
subprocesses, one after the other or ``--parallel N`` at a time. It prints a leaderboard and
writes ``sweep_results.csv`` and ``sweep_results.json`` into ``OUT/<sweep stem>/``, which
name every trial's command, run folder and wall time. ``--results`` writes them from the
trials finished so far and runs nothing (while the sweep itself runs on, say); ``--trial ID``
(repeatable) runs only the named trials of the grid, e.g. one seed that is still missing. :mod:`histo_gan.sweep_file` reads the
YAML.

A trial is identified by its full command and, for ``histo-gan`` commands, the config it
resolves to (``--print_config``): editing the sweep's ``command`` or a config it reads makes
new trials, never stale results. Each trial is a run of its own (config, split, checkpoints
and ``summary_fit.json`` in its run folder); its summary is also kept as
``trial_<id>.json``, and trials that already have one are skipped, so an interrupted sweep
resumes where it stopped. With a server, the same file works with ``wandb sweep`` +
``wandb agent``.

**Trial environment.** Every trial gets ``HISTO_GAN_SUMMARY`` (where its summary goes) and
``HISTO_GAN_TRIAL=<sweep stem>_<trial id>``, a run name that is unique to the trial and the
same on every start: ``experiments/protocols/fit_test.sh`` trains under that name in
resumable chunks, so a trial that was killed mid-way (the sweep stopped, the session ended)
resumes from its ``last.ckpt`` when the sweep is started again, instead of from scratch. With
``--parallel`` above 1 each trial runs with ``OMP_NUM_THREADS=1`` (and the MKL and OpenBLAS
equivalents; ``--threads`` changes the number), and its output goes to
``OUT/<sweep stem>/logs/trial_<id>.log`` (appended to on every attempt) instead of the console.
Stopping the sweep (Ctrl-C or ``kill``) stops its running trials too.

**Wall time.** ``trial_<id>.time.json`` keeps each trial's wall time (``seconds``) and its
number of starts (``attempts``), written every ``HEARTBEAT`` seconds while it runs, so the time
of an attempt that was killed still counts, to within that interval. A finished trial's
summary and row of the results gain ``wall_seconds`` and ``attempts``, and, when the trial
reports ``test_seconds`` (``fit_test.sh`` does), ``fit_seconds`` = wall time minus test time.

Supported parameter specs: ``{value: v}``, ``{values: [...]}``, ``{distribution: uniform |
log_uniform_values | int_uniform, min, max}`` (random search only for distributions).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from histo_gan.cli import lightning_main
from histo_gan.files import write_text_atomic
from histo_gan.sweep_file import expand_trials, load_sweep, trial_command, trial_label

__all__ = [
    "Trial",
    "TrialClock",
    "expand_trials",
    "load_sweep",
    "main",
    "resolved_config",
    "run_trials",
    "trial_command",
    "trial_id",
    "trial_label",
]


def resolved_config(command: list[str]) -> str:
    """The config a ``histo-gan`` Lightning command resolves to, else ``""``."""
    if command[1:3] != ["-m", "histo_gan.cli"] or len(command) < 4:
        return ""
    if command[3] not in ("fit", "validate", "test", "predict"):
        return ""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        lightning_main([*command[3:], "--print_config"])
    return out.getvalue()


def trial_id(command: list[str], config: str) -> str:
    """Identity of a trial: its full command and resolved config."""
    text = json.dumps({"command": command[1:], "config": config})
    return hashlib.sha1(text.encode()).hexdigest()[:10]


HEARTBEAT = 10.0  # seconds between wall-time records of a running trial
POLL = 0.2  # seconds between checks on the running trials


@dataclass(frozen=True)
class Trial:
    """One trial of a sweep: its parameters, command, identity and files in the sweep folder."""

    number: int
    assignment: dict
    command: list[str]
    id: str
    name: str  # HISTO_GAN_TRIAL: <sweep stem>_<id>
    folder: Path

    @property
    def summary(self) -> Path:
        return self.folder / f"trial_{self.id}.json"

    @property
    def clock(self) -> Path:
        return self.folder / f"trial_{self.id}.time.json"

    @property
    def log(self) -> Path:
        return self.folder / "logs" / f"trial_{self.id}.log"


class TrialClock:
    """A trial's wall time over all its attempts, kept in ``trial_<id>.time.json``."""

    def __init__(self, path: Path) -> None:
        record = json.loads(path.read_text()) if path.is_file() else {}
        self.path = path
        self.previous = float(record.get("seconds", 0.0))
        self.attempts = int(record.get("attempts", 0))
        self.started = self.written = time.monotonic()

    def start(self) -> None:
        """A new attempt begins now."""
        self.attempts += 1
        self.started = time.monotonic()
        self.write()

    @property
    def seconds(self) -> float:
        return self.previous + time.monotonic() - self.started

    def beat(self) -> None:
        """Record the time so far when the last record is ``HEARTBEAT`` seconds old."""
        if time.monotonic() - self.written >= HEARTBEAT:
            self.write()

    def write(self) -> None:
        record = {"seconds": round(self.seconds, 1), "attempts": self.attempts}
        write_text_atomic(self.path, json.dumps(record))
        self.written = time.monotonic()


def trial_env(trial: Trial, threads: int | None) -> dict[str, str]:
    """The environment of a trial: its summary path, its run name and its thread budget."""
    env = dict(os.environ, HISTO_GAN_SUMMARY=str(trial.summary), HISTO_GAN_TRIAL=trial.name)
    env.setdefault("WANDB_MODE", "offline")
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    return env


def _start(trial: Trial, threads: int | None, to_log: bool) -> tuple[subprocess.Popen, object]:
    """Start a trial (in the sweep's process group: whatever stops the whole group stops it)."""
    log = None
    if to_log:
        trial.log.parent.mkdir(parents=True, exist_ok=True)
        log = open(trial.log, "a")  # closed when the trial ends
        log.write(
            f"# attempt at {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(trial.command)}\n"
        )
        log.flush()
    process = subprocess.Popen(
        trial.command,
        env=trial_env(trial, threads),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )
    return process, log


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...), read from ``/proc``; empty
    where there is no ``/proc``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        below = children.get(queue.pop(), [])
        found += below
        queue += below
    return found


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to a trial and every process below it, SIGKILL after ``grace`` seconds."""
    pids = [process.pid, *descendants(process.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + grace
    for pid in pids:  # the trial's children may outlive it: give them the same grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    process.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    return True


def _finish_summary(trial: Trial, clock: TrialClock) -> None:
    """Add the wall time (and the fit's, when the trial reported its test time) to a summary."""
    summary = json.loads(trial.summary.read_text())
    summary["wall_seconds"] = round(clock.seconds, 1)
    summary["attempts"] = clock.attempts
    if "test_seconds" in summary:
        summary["fit_seconds"] = round(clock.seconds - float(summary["test_seconds"]), 1)
    write_text_atomic(trial.summary, json.dumps(summary, indent=2))


def run_trials(trials: list[Trial], parallel: int, threads: int | None, console) -> dict[str, int]:
    """Run ``trials``, at most ``parallel`` at a time; their exit codes by trial id.

    With ``parallel`` > 1 every trial's output goes to its log file. A KeyboardInterrupt (or
    SIGTERM, turned into one by :func:`main`) stops the running trials, records their wall
    time and propagates.
    """
    pending, running, codes = list(trials), {}, {}
    try:
        while pending or running:
            while pending and len(running) < parallel:
                trial = pending.pop(0)
                clock = TrialClock(trial.clock)
                clock.start()
                process, log = _start(trial, threads, to_log=parallel > 1)
                running[trial.id] = (trial, process, log, clock)
                where = f" (log {trial.log})" if log else ""
                console.print(f"  started trial {trial.number} {trial.id}{where}")
            time.sleep(POLL)
            for key, (trial, process, log, clock) in list(running.items()):
                if process.poll() is None:
                    clock.beat()
                    continue
                clock.write()
                if log:
                    log.close()
                codes[key] = process.returncode
                if process.returncode == 0 and trial.summary.exists():
                    _finish_summary(trial, clock)
                del running[key]
                state = "done" if codes[key] == 0 else f"exit code {codes[key]}"
                console.print(f"  trial {trial.number} {trial.id}: {state}, {clock.seconds:.0f} s")
    finally:
        for _trial, process, log, clock in running.values():
            _stop(process)
            clock.write()
            if log:
                log.close()
    return codes


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def write_results(trials: list[Trial], spec: dict, out: Path, console, codes: dict) -> int:
    """Print the leaderboard and write ``sweep_results.{csv,json}`` from the trials' summaries
    (a trial without one is listed with its exit code, or as not run). 0 when every trial
    finished."""
    from rich.table import Table

    metric = spec.get("metric", {}).get("name")
    goal = spec.get("metric", {}).get("goal", "maximize")
    results = []
    for trial in trials:
        record = {"trial": trial.id, **trial.assignment, "command": shlex.join(trial.command)}
        if not trial.summary.exists():
            code = codes.get(trial.id)
            status = "not run" if code is None else f"failed ({code})"
            if code is not None:
                console.print(
                    f"  [red]trial {trial.number} {trial.id} failed with exit code {code}[/red]"
                )
            results.append({**record, "status": status})
            continue
        summary = json.loads(trial.summary.read_text())
        results.append({**record, "status": "ok", "run_dir": summary.get("run_dir"), **summary})
    if not results:
        return 0
    ok = [r for r in results if r["status"] == "ok" and metric in r]
    ok.sort(key=lambda r: r[metric], reverse=(goal == "maximize"))
    table = Table(title=f"{out.name}: {metric} ({goal})")
    columns = ["trial", *spec["parameters"], metric, "wall_seconds", "run_dir"]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="histo-gan sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="W&B sweep YAML")
    parser.add_argument("--out", type=Path, default=Path("runs/sweeps"), help="results folder")
    parser.add_argument("--count", type=int, default=None, help="number of trials")
    parser.add_argument("--seed", type=int, default=0, help="seed of random search")
    parser.add_argument("--parallel", type=int, default=1, help="trials at a time (1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP/MKL/OpenBLAS threads of each trial (1 with --parallel > 1)",
    )
    parser.add_argument(
        "--trial",
        action="append",
        default=None,
        metavar="ID",
        help="run only this trial (its id as listed; repeatable); the others are left as they are",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument(
        "--results",
        action="store_true",
        help="run nothing: write sweep_results.{csv,json} of the trials finished so far",
    )
    args = parser.parse_args(argv)
    if args.parallel < 1:
        raise ValueError(f"--parallel must be at least 1, got {args.parallel}")
    threads = args.threads if args.threads is not None else (1 if args.parallel > 1 else None)
    from rich.console import Console

    console = Console()
    spec = load_sweep(args.sweep)
    assignments = expand_trials(spec, args.count, args.seed)
    out = args.out / args.sweep.stem
    out.mkdir(parents=True, exist_ok=True)
    trials = []
    for number, assignment in enumerate(assignments, start=1):
        command = trial_command(spec, assignment)
        key = trial_id(command, resolved_config(command))
        trial = Trial(number, assignment, command, key, f"{args.sweep.stem}_{key}", out)
        state = "finished" if trial.summary.exists() else "to run"
        console.print(
            f"[bold]trial {number}/{len(assignments)}[/bold] {key}: {assignment} ({state})"
        )
        console.print("  " + shlex.join(command))
        trials.append(trial)
    chosen = trials
    if args.trial:
        known = {t.id for t in trials}
        unknown = sorted(set(args.trial) - known)
        if unknown:
            raise ValueError(
                f"{args.sweep}: no trial {', '.join(unknown)} (its trials: {', '.join(sorted(known))})"
            )
        chosen = [t for t in trials if t.id in args.trial]
    if args.dry_run:
        return 0
    if args.results:
        write_results(trials, spec, out, console, {})
        return 0
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        codes = run_trials(
            [t for t in chosen if not t.summary.exists()], args.parallel, threads, console
        )
    except KeyboardInterrupt:
        console.print(
            "[red]sweep stopped: its running trials were stopped; start it again to resume[/red]"
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = write_results(trials, spec, out, console, codes)
    if args.trial:  # the trials left out are not failures of this run
        return 0 if all(t.summary.exists() for t in chosen) else 1
    return code
