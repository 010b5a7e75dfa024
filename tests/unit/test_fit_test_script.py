"""experiments/protocols/fit_test.sh with a stand-in for histo-gan that records its calls: the
plain fit, the chunked fit under the sweep's trial name, and the summary it leaves; and
collect_results.py, which copies a trial's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "experiments" / "protocols" / "fit_test.sh"

# A histo-gan stand-in: appends its arguments to $CALLS; `fit` stops by the chunk timer on its
# first call of a run name and finishes on the next; only a run's first fit finds a new best
# (best.ckpt and best_model_path), every fit saves last.ckpt unless $FINISHED says the budget
# was already reached (then it trains nothing and saves nothing); `test` writes a summary.
FAKE = """
import json, os, pathlib, sys
args = sys.argv[1:]
calls = os.environ["CALLS"]
previous = [json.loads(line) for line in open(calls)] if os.path.exists(calls) else []
with open(calls, "a") as handle:
    handle.write(json.dumps(args) + "\\n")
name = args[args.index("--name") + 1] if "--name" in args else "config_name"
run_dir = pathlib.Path(os.environ["RUNS"], name, f"version_{len(previous)}")
summary = {"run_dir": str(run_dir)}
if args[0] == "fit":
    chunks = sum(c[0] == "fit" for c in previous)
    summary.update(global_step=10 * (chunks + 1),
                   stopped_by_chunk_timer="--max_chunk_minutes" in args and chunks == 0)
    (run_dir / "checkpoints").mkdir(parents=True)
    if not os.environ.get("FINISHED"):
        (run_dir / "checkpoints" / "last.ckpt").write_text("")
    if chunks == 0:
        (run_dir / "checkpoints" / "best.ckpt").write_text("")
        summary["best_model_path"] = str(run_dir / "checkpoints" / "best.ckpt")
else:
    summary["test/aji"] = 0.5
with open(os.environ["HISTO_GAN_SUMMARY"], "w") as handle:
    json.dump(summary, handle)
"""


def run_script(tmp_path: Path, **env: str) -> list[list[str]]:
    fake = tmp_path / "histo-gan"
    fake.write_text(f"#!{sys.executable}\n{FAKE}")
    fake.chmod(0o755)
    environment = {
        k: v for k, v in os.environ.items() if k not in ("HISTO_GAN_TRIAL", "HISTO_GAN_SUMMARY")
    }
    environment.update(
        HISTO_GAN=str(fake),
        PYTHON=sys.executable,
        CALLS=str(tmp_path / "calls"),
        RUNS=str(tmp_path / "runs"),
        **env,
    )
    subprocess.run(
        ["bash", str(SCRIPT), "--config", "c.yaml", "--seed_everything=1"],
        env=environment,
        check=True,
        capture_output=True,
    )
    return [json.loads(line) for line in open(tmp_path / "calls")]


def test_without_a_trial_name_it_fits_once_and_tests_the_best_checkpoint(tmp_path):
    calls = run_script(tmp_path)
    best = str(tmp_path / "runs" / "config_name" / "version_0" / "checkpoints" / "best.ckpt")
    assert calls == [
        ["fit", "--config", "c.yaml", "--seed_everything=1"],
        ["test", "--config", "c.yaml", "--seed_everything=1", "--ckpt_path", best],
    ]


def test_with_a_trial_name_it_fits_in_chunks_and_leaves_a_complete_summary(tmp_path):
    summary = tmp_path / "trial.json"
    calls = run_script(
        tmp_path, HISTO_GAN_TRIAL="sweep_abc", HISTO_GAN_SUMMARY=str(summary), CHUNK_MINUTES="7"
    )
    chunk = [
        "fit",
        "--config",
        "c.yaml",
        "--seed_everything=1",
        "--name",
        "sweep_abc",
        "--ckpt_path",
        "last",
        "--max_chunk_minutes",
        "7",
    ]
    assert calls[:2] == [chunk, chunk]  # the first chunk stopped by its timer, the second ends
    # the second chunk improved nothing: the best checkpoint is the first chunk's
    best = str(tmp_path / "runs" / "sweep_abc" / "version_0" / "checkpoints" / "best.ckpt")
    assert calls[2] == [
        "test",
        "--config",
        "c.yaml",
        "--seed_everything=1",
        "--name",
        "sweep_abc_test",
        "--ckpt_path",
        best,
    ]
    record = json.loads(summary.read_text())
    assert record["test/aji"] == 0.5 and record["run_dir"].endswith("sweep_abc_test/version_2")
    assert record["fit_run_dir"] == str(tmp_path / "runs" / "sweep_abc" / "version_1")
    assert record["fit_global_step"] == 20 and 0 <= record["test_seconds"] < 60


def test_collect_results_copies_a_trials_fit_summary_and_wall_time(tmp_path):
    sys.path.insert(0, str(REPO / "experiments" / "protocols"))
    try:
        import collect_results
    finally:
        sys.path.pop(0)
    test_run, fit_run = tmp_path / "test_run", tmp_path / "fit_run"
    for folder in (test_run, fit_run):
        folder.mkdir()
    for name in collect_results.SUMMARY_FILES:
        (test_run / name).write_text(name)
    (fit_run / "summary_fit.json").write_text('{"global_step": 20}')
    trial = {
        "trial": "abc",
        "status": "ok",
        "run_dir": str(test_run),
        "fit_run_dir": str(fit_run),
        "config": "mix/real.yaml",
        "seed_everything": 1,
        "wall_seconds": 90.0,
        "fit_seconds": 80.0,
        "test_seconds": 10,
        "attempts": 2,
        "test/aji": 0.5,
    }
    sweep, not_started = tmp_path / "sweep", tmp_path / "not_started"
    sweep.mkdir()
    (sweep / "sweep_results.json").write_text(json.dumps([trial]))
    out = tmp_path / "results"
    assert collect_results.main([str(out), "--sweep", str(not_started), "--sweep", str(sweep)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["real_s1"]
    copied = out / "real_s1"
    assert (copied / "summary_fit.json").read_text() == '{"global_step": 20}'
    record = json.loads((copied / "trial.json").read_text())
    assert (record["fit_seconds"], record["attempts"], record["trial"]) == (80.0, 2, "abc")
    assert "test/aji" not in record


def test_a_rerun_after_the_fit_finished_tests_the_trials_best_checkpoint(tmp_path):
    """Killed during its test, the trial starts again: its fit chunk trains nothing and names no
    checkpoint; the test takes the newest best.ckpt of the trial's chunks."""
    summary = tmp_path / "trial.json"
    environment = {"HISTO_GAN_TRIAL": "t", "HISTO_GAN_SUMMARY": str(summary)}
    run_script(tmp_path, **environment)  # chunks version_0 (best) and version_1, test version_2
    summary.unlink()
    calls = run_script(tmp_path, FINISHED="1", **environment)
    best = str(tmp_path / "runs" / "t" / "version_0" / "checkpoints" / "best.ckpt")
    assert calls[-1][-2:] == ["--ckpt_path", best] and calls[-2][0] == "fit"
    assert json.loads(summary.read_text())["fit_run_dir"].endswith("t/version_3")
