"""W&B offline logging through the CLI, and the local sweep runner."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import yaml

from histo_gan.cli import main
from histo_gan.sweep import expand_trials, trial_command

TINY = ["--trainer.max_epochs=1", "--data.patches_per_epoch=6", "--data.batch_size=6"]


def test_wandb_logger_runs_offline_into_the_run_folder(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = "--trainer.logger=[{class_path: lightning.pytorch.loggers.WandbLogger, init_args: {project: histo-gan-test}}]"
    main(
        [
            "fit",
            "--config",
            "conf/experiment/baseline_unet_tiny.yaml",
            logger,
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.callbacks=[]",
            *TINY,
        ]
    )
    run_dir = tmp_path / "baseline_unet_tiny" / "version_0"
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert {"config.yaml", "summary_fit.json", "split.json"} <= set(os.listdir(run_dir))


def test_grid_expansion_and_commands(repo_root):
    spec = yaml.safe_load(open(repo_root / "experiments" / "sweeps" / "baseline_unet_lr.yaml"))
    trials = expand_trials(spec)
    assert len(trials) == 4 and {t["model.init_args.boundary_width"] for t in trials} == {1, 2}
    command = trial_command(spec, trials[0])
    assert command[1:4] == ["-m", "histo_gan.cli", "fit"]
    assert "--model.init_args.optimizer.init_args.lr=0.001" in command
    random_spec = {
        "method": "random",
        "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}},
    }
    draws = [t["lr"] for t in expand_trials(random_spec, count=20, seed=0)]
    assert all(1e-4 <= d <= 1e-2 for d in draws) and draws == [
        t["lr"] for t in expand_trials(random_spec, 20, 0)
    ]


def test_local_sweep_runs_trials_and_resumes(tmp_path, repo_root, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    base = tmp_path / "base.yaml"  # a config the sweep reads: editing it makes new trials
    base.write_text("data: {seed: 0}\n")
    sweep = {
        "program": "histo-gan",
        "method": "grid",
        "metric": {"name": "val/aji", "goal": "maximize"},
        "parameters": {"model.init_args.boundary_width": {"values": [1, 2]}},
        "command": [
            "${env}",
            "histo-gan",
            "fit",
            "--config",
            "conf/experiment/baseline_unet_tiny.yaml",
            "--config",
            str(base),
            f"--trainer.default_root_dir={tmp_path / 'runs'}",
            "--name=trial",
            "--trainer.callbacks=[]",
            *TINY,
            "${args}",
        ],
    }
    path = tmp_path / "tiny_sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    out = tmp_path / "sweeps"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    results = list(csv.DictReader(open(out / "tiny_sweep" / "sweep_results.csv")))
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert all(0.0 <= float(r["val/aji"]) <= 1.0 for r in results)
    assert "val/aji (maximize)" in capsys.readouterr().out
    # every trial keeps its own records, and the results name the command and the run folder
    run_dirs = {Path(r["run_dir"]) for r in results}
    assert run_dirs == {tmp_path / "runs" / "trial" / f"version_{n}" for n in (0, 1)}
    for run_dir in run_dirs:
        assert {"config.yaml", "split.json", "summary_fit.json"} <= set(os.listdir(run_dir))
    widths = {
        yaml.safe_load((d / "config.yaml").read_text())["model"]["init_args"]["boundary_width"]
        for d in run_dirs
    }
    assert widths == {1, 2}
    assert all("--model.init_args.boundary_width=" in r["command"] for r in results)
    # a second run finds every trial's summary and runs nothing again
    summaries = sorted((out / "tiny_sweep").glob("trial_*.json"))
    stamps = [p.stat().st_mtime_ns for p in summaries]
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert [p.stat().st_mtime_ns for p in summaries] == stamps
    assert json.loads(summaries[0].read_text())["epochs"] == 1
    assert sorted(os.listdir(tmp_path / "runs" / "trial")) == ["version_0", "version_1"]
    # once the config the command reads changes, the old results are not these trials'
    capsys.readouterr()
    base.write_text("data: {seed: 1}\n")
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    old_ids = {p.stem.removeprefix("trial_") for p in summaries}
    new_ids = set(re.findall(r"trial \d/2 (\w{10}):", printed))
    assert len(new_ids) == 2 and not new_ids & old_ids, printed
