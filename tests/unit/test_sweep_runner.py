"""The local sweep runner's process handling, with trials that are small Python scripts: trials
side by side, their environment and logs, wall time over attempts, reruns of unfinished trials."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from histo_gan import sweep as sweep_module
from histo_gan.sweep import TrialClock, descendants, main, trial_label

# Writes its start and end times, environment and parameter to its summary after `--sleep`
# seconds; with --fail_first it exits 3 on its first start (a marker file tells the second).
TRIAL = """
import json, os, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
marker = os.environ["HISTO_GAN_SUMMARY"] + ".started"
first = not os.path.exists(marker)
open(marker, "a").close()
print("trial", args["x"], "running", flush=True)
start = time.time()
time.sleep(float(args.get("sleep", 0)))
if args.get("fail_first") == "1" and first:
    sys.exit(3)
summary = {"x": int(args["x"]), "score": float(args["x"]), "start": start, "end": time.time(),
           "trial_name": os.environ["HISTO_GAN_TRIAL"],
           "threads": os.environ.get("OMP_NUM_THREADS"), "test_seconds": 0.25}
json.dump(summary, open(os.environ["HISTO_GAN_SUMMARY"], "w"))
"""


def write_sweep(tmp_path: Path, values: list[int], *extra: str) -> Path:
    script = tmp_path / "trial.py"
    script.write_text(TRIAL)
    spec = {
        "method": "grid",
        "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"x": {"values": values}},
        "command": [sys.executable, str(script), *extra, "${args}"],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def summaries(out: Path) -> dict[int, dict]:
    found = [json.loads(p.read_text()) for p in out.glob("trial_*.json")]
    return {s["x"]: s for s in found if "x" in s}


def test_parallel_trials_overlap_with_one_thread_a_name_and_a_log_each(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_module, "POLL", 0.05)
    path = write_sweep(tmp_path, [1, 2], "--sleep=1.5")
    out = tmp_path / "sweeps"
    assert main([str(path), "--out", str(out), "--parallel", "2"]) == 0
    runs = summaries(out / "tiny")
    assert runs[1]["start"] < runs[2]["end"] and runs[2]["start"] < runs[1]["end"]  # overlap
    names = {runs[x]["trial_name"] for x in (1, 2)}
    ids = {
        p.stem.removeprefix("trial_")
        for p in (out / "tiny").glob("trial_*.json")
        if not p.stem.endswith(".time")
    }
    assert names == {f"tiny_{i}" for i in ids} and len(names) == 2
    assert {runs[x]["threads"] for x in (1, 2)} == {"1"}
    logs = sorted((out / "tiny" / "logs").glob("trial_*.log"))
    assert len(logs) == 2 and all("running" in p.read_text() for p in logs)
    rows = list(csv.DictReader(open(out / "tiny" / "sweep_results.csv")))
    assert [r["x"] for r in rows] == ["1", "2"] and all(r["attempts"] == "1" for r in rows)
    assert all(1.4 <= float(r["wall_seconds"]) < 30 for r in rows)
    assert all(
        float(r["fit_seconds"]) == pytest.approx(float(r["wall_seconds"]) - 0.25, abs=0.11)
        for r in rows
    )


def test_one_at_a_time_keeps_the_console_and_the_callers_threads(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(sweep_module, "POLL", 0.05)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    path = write_sweep(tmp_path, [1, 2])
    out = tmp_path / "sweeps"
    assert main([str(path), "--out", str(out)]) == 0
    runs = summaries(out / "tiny")
    assert runs[1]["end"] <= runs[2]["start"]  # one after the other
    assert {runs[x]["threads"] for x in (1, 2)} == {"2"}
    assert "trial 1 running" in capfd.readouterr().out
    assert not (out / "tiny" / "logs").exists()


def test_an_unfinished_trial_is_rerun_and_its_time_adds_up(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_module, "POLL", 0.05)
    path = write_sweep(tmp_path, [1, 2], "--fail_first=1", "--sleep=0.3")
    out = tmp_path / "sweeps"
    assert main([str(path), "--out", str(out), "--parallel", "2"]) == 1  # both fail once
    clocks = sorted((out / "tiny").glob("trial_*.time.json"))
    assert [json.loads(p.read_text())["attempts"] for p in clocks] == [1, 1]
    first = [json.loads(p.read_text())["seconds"] for p in clocks]
    assert all(s >= 0.3 for s in first)
    assert main([str(path), "--out", str(out), "--parallel", "2"]) == 0  # rerun: both finish
    rows = list(csv.DictReader(open(out / "tiny" / "sweep_results.csv")))
    assert [r["attempts"] for r in rows] == ["2", "2"]
    assert all(float(r["wall_seconds"]) >= s + 0.3 for r, s in zip(rows, first))
    stamps = [p.stat().st_mtime_ns for p in (out / "tiny").glob("trial_*.json")]
    assert main([str(path), "--out", str(out), "--parallel", "2"]) == 0  # finished: skipped
    assert [p.stat().st_mtime_ns for p in (out / "tiny").glob("trial_*.json")] == stamps


def test_a_killed_attempt_keeps_its_last_recorded_time(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_module, "HEARTBEAT", 0.0)
    clock = TrialClock(tmp_path / "trial_x.time.json")
    clock.start()
    time.sleep(0.2)
    clock.beat()  # what a running sweep writes; then the sweep is killed
    again = TrialClock(tmp_path / "trial_x.time.json")
    assert again.attempts == 1 and 0.2 <= again.previous < 5
    again.start()
    assert again.attempts == 2 and again.seconds >= 0.2


def test_stopping_the_sweep_stops_its_trials_and_their_children(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_module, "POLL", 0.05)
    script = tmp_path / "tree.sh"  # a trial with a child, as fit_test.sh has
    script.write_text(f"#!/bin/sh\n{sys.executable} -c 'import time; time.sleep(60)' &\nwait\n")
    spec = {
        "method": "grid",
        "parameters": {"x": {"values": [1]}},
        "command": ["sh", str(script), "${args}"],
    }
    (tmp_path / "tree.yaml").write_text(yaml.safe_dump(spec))
    seen = {}
    real_start = sweep_module._start

    def start_and_interrupt_soon(trial, threads, to_log):
        process, log = real_start(trial, threads, to_log)

        def interrupt():  # once the trial's child runs: SIGTERM to the sweep
            deadline = time.monotonic() + 10
            while not descendants(process.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            seen["pids"] = [process.pid, *descendants(process.pid)]
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=interrupt, daemon=True).start()
        return process, log

    monkeypatch.setattr(sweep_module, "_start", start_and_interrupt_soon)
    assert main([str(tmp_path / "tree.yaml"), "--out", str(tmp_path / "sweeps")]) == 130
    assert len(seen["pids"]) == 2
    assert not any(sweep_module._alive(pid) for pid in seen["pids"])  # ended (or zombies)
    clock = json.loads(next((tmp_path / "sweeps" / "tree").glob("*.time.json")).read_text())
    assert clock["attempts"] == 1


def test_trial_labels_name_the_mix_split_and_seed():
    assert (
        trial_label(
            {
                "config": "experiments/protocols/mix/real+hou.yaml",
                "data.split.init_args.path": "experiments/splits/budget_4.json",
                "seed_everything": 1,
            }
        )
        == "real+hou_budget_4_s1"
    )
    assert trial_label({"lr": 0.1}) == "s0"


def test_parallel_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="--parallel"):
        main([str(write_sweep(tmp_path, [1])), "--parallel", "0"])


def test_results_lists_the_finished_trials_of_a_running_sweep_and_runs_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(sweep_module, "POLL", 0.05)
    path = write_sweep(tmp_path, [1, 2], "--fail_first=1")
    out = tmp_path / "sweeps"
    assert main([str(path), "--out", str(out), "--parallel", "2"]) == 1  # both fail once
    sweep = out / "tiny"
    (sweep / "sweep_results.json").unlink()
    finished = {p.name for p in sweep.glob("trial_*.json")}
    assert main([str(path), "--out", str(out), "--results"]) == 0
    rows = json.loads((sweep / "sweep_results.json").read_text())
    assert [r["status"] for r in rows] == ["not run", "not run"]
    assert {p.name for p in sweep.glob("trial_*.json")} == finished  # nothing was started
    assert main([str(path), "--out", str(out), "--parallel", "2"]) == 0
    assert main([str(path), "--out", str(out), "--results"]) == 0
    rows = json.loads((sweep / "sweep_results.json").read_text())
    assert [(r["status"], r["score"]) for r in rows] == [("ok", 1.0), ("ok", 2.0)]


def test_trial_runs_only_the_named_trials_and_rejects_an_unknown_id(tmp_path, capsys):
    path = write_sweep(tmp_path, [1, 2, 3])
    out = tmp_path / "sweeps"
    assert main([str(path), "--out", str(out), "--dry-run"]) == 0
    listed = re.findall(r"trial \d/3\S* (\w+): \{'x': (\d)\}", capsys.readouterr().out)
    ids = {int(x): key for key, x in listed}
    assert sorted(ids) == [1, 2, 3]
    assert main([str(path), "--out", str(out), "--trial", ids[2]]) == 0
    assert sorted(summaries(out / "tiny")) == [2]
    rows = json.loads((out / "tiny" / "sweep_results.json").read_text())
    assert [r["status"] for r in rows] == ["not run", "ok", "not run"]
    with pytest.raises(ValueError, match="no trial nope"):
        main([str(path), "--out", str(out), "--trial", "nope"])
