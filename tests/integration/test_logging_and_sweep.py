"""W&B offline logging through the CLI, and the local sweep runner."""

from __future__ import annotations

import csv
import json

import yaml

from histo_gan.cli import main
from histo_gan.sweep import expand_trials, trial_command

TINY = ["--trainer.max_epochs=1", "--data.patches_per_epoch=6", "--data.batch_size=6"]


def test_wandb_logger_runs_offline(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = f"--trainer.logger=[{{class_path: lightning.pytorch.loggers.WandbLogger, init_args: {{project: histo-gan-test, save_dir: {tmp_path}}}}}]"
    main(["fit", "--config", "conf/experiment/baseline_unet_tiny.yaml", logger,
          "--trainer.callbacks=[]", *TINY])  # fmt: skip
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


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
    sweep = {
        "program": "histo-gan",
        "method": "grid",
        "metric": {"name": "val/aji", "goal": "maximize"},
        "parameters": {"model.init_args.boundary_width": {"values": [1, 2]}},
        "command": ["${env}", "histo-gan", "fit", "--config", "conf/experiment/baseline_unet_tiny.yaml",
                    f"--trainer.logger=[{{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {{save_dir: {tmp_path}}}}}]",
                    "--trainer.callbacks=[]", *TINY, "${args}"],
    }  # fmt: skip
    path = tmp_path / "tiny_sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main(["sweep", str(path), "--out", str(tmp_path / "sweeps")]) == 0
    results = list(csv.DictReader(open(tmp_path / "sweeps" / "tiny_sweep" / "sweep_results.csv")))
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert all(0.0 <= float(r["val/aji"]) <= 1.0 for r in results)
    assert "val/aji (maximize)" in capsys.readouterr().out
    # a second run finds every trial's summary and runs nothing again
    summaries = sorted((tmp_path / "sweeps" / "tiny_sweep").glob("trial_*.json"))
    stamps = [p.stat().st_mtime_ns for p in summaries]
    assert main(["sweep", str(path), "--out", str(tmp_path / "sweeps")]) == 0
    assert [p.stat().st_mtime_ns for p in summaries] == stamps
    assert json.loads(summaries[0].read_text())["epochs"] == 1
