"""experiments/protocols/converged/gan_curve.py: the export decision of a synthesizer's run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "gan_curve", REPO / "experiments" / "protocols" / "converged" / "gan_curve.py"
)
gan_curve = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gan_curve)


def write_run(run: Path, l1: list[float]) -> None:
    (run / "version_0").mkdir(parents=True)
    rows = [f"0,{100 * (k + 1) - 1},{v}" for k, v in enumerate(l1)]
    (run / "version_0" / "metrics.csv").write_text("epoch,step,val/l1\n" + "\n".join(rows) + "\n")


def test_a_falling_l1_that_levels_off_is_flattened_with_its_budget(tmp_path):
    l1 = [0.30, 0.20, 0.15, 0.12, 0.11, 0.105, 0.10, 0.10, 0.10]
    write_run(tmp_path / "gan", l1)
    out = tmp_path / "curve"
    assert (
        gan_curve.main(
            [str(tmp_path / "gan"), "--metric", "val/l1", "--lower-is-better", "--out", str(out)]
        )
        == 0
    )
    record = json.loads((out / "plateau.json").read_text())
    # trailing means of 3: ..., 0.126667 (step 500), 0.111667 (600), 0.105, 0.101667, 0.1;
    # plateau = mean of the last third = 0.102222; reached where <= 0.112222: step 600
    assert abs(record["plateau"] - 0.102222) < 1e-6
    assert record["flattened"] and record["budget"] == 600
    assert record["settled"] and record["tail_sd"] == 0.0
    assert (out / "curve.png").is_file() and (out / "curve.csv").read_text().count("\n") == 10


@pytest.mark.parametrize(
    "l1, rise",
    [
        # the tail 0.2, 0.15, 0.1 still falls (improves) 0.1 over its 200 steps
        ([0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1], 0.1),
        # falls, then rises again: the tail 0.1, 0.15, 0.2 gets worse by 0.1
        ([0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.1, 0.15, 0.2], -0.1),
    ],
)
def test_a_tail_still_moving_either_way_is_not_flattened(tmp_path, l1, rise):
    write_run(tmp_path / "gan", l1)
    out = tmp_path / "curve"
    gan_curve.main(
        [str(tmp_path / "gan"), "--metric", "val/l1", "--lower-is-better", "--out", str(out)]
    )
    record = json.loads((out / "plateau.json").read_text())
    assert not record["flattened"] and abs(record["improvement_over_tail"] - rise) < 1e-9


def test_a_relative_tolerance_judges_stain_distances_at_their_own_scale(tmp_path):
    # a stain distance still falling by 0.0005 per evaluation: an absolute tolerance of 0.01
    # (made for AJI) calls it flat; 10% of its tail's mean (0.1 x 0.0065) does not
    w1 = [0.010, 0.0095, 0.009, 0.0085, 0.008, 0.0075, 0.007, 0.0065, 0.006]
    write_run(tmp_path / "gan", w1)
    absolute, relative = tmp_path / "absolute", tmp_path / "relative"
    base = [str(tmp_path / "gan"), "--metric", "val/l1", "--lower-is-better", "--out"]
    gan_curve.main([*base, str(absolute)])
    gan_curve.main([*base, str(relative), "--relative-tolerance", "0.1"])
    absolute_record = json.loads((absolute / "plateau.json").read_text())
    relative_record = json.loads((relative / "plateau.json").read_text())
    assert absolute_record["flattened"]
    assert not relative_record["flattened"]
    assert abs(relative_record["tolerance"] - 0.00065) < 1e-12
    assert relative_record["relative_tolerance"] == 0.1


def test_a_trendless_but_jumping_curve_is_flattened_and_not_settled(tmp_path):
    # no trend in the tail, but it jumps by 0.02 between evaluations: sd of the last three
    # (0.01, 0.03, 0.01) = 0.011547 > 0.01
    write_run(tmp_path / "gan", [0.05, 0.02, 0.01, 0.03, 0.01, 0.01, 0.03, 0.01, 0.03, 0.01])
    out = tmp_path / "curve"
    gan_curve.main(
        [str(tmp_path / "gan"), "--metric", "val/l1", "--lower-is-better", "--out", str(out)]
    )
    record = json.loads((out / "plateau.json").read_text())
    assert abs(record["tail_sd"] - 0.011547) < 1e-6
    assert record["flattened"] and not record["settled"]


def test_the_noise_of_the_measure_decides_when_it_exceeds_the_tolerance(tmp_path):
    # the still-falling curve of above: its tail's fall of 0.1 is a trend at noise 0.03
    # (limit 2 x 0.03 x 1.414214) and within the noise at 0.05; its tail sd is 0.05
    write_run(tmp_path / "gan", [0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1])
    base = [str(tmp_path / "gan"), "--metric", "val/l1", "--lower-is-better", "--out"]
    gan_curve.main([*base, str(tmp_path / "quiet"), "--noise-sd", "0.03"])
    gan_curve.main([*base, str(tmp_path / "loud"), "--noise-sd", "0.05"])
    quiet = json.loads((tmp_path / "quiet" / "plateau.json").read_text())
    loud = json.loads((tmp_path / "loud" / "plateau.json").read_text())
    assert not quiet["flattened"] and abs(quiet["rise_limit"] - 0.084853) < 1e-6
    assert loud["flattened"] and loud["noise_sd"] == 0.05
    # sd 0.05 within 0.05 x sqrt(5.991465 / 2) = 0.086541: settled, by the noise alone
    assert loud["settled"] and loud["settled_by_noise"]
    assert abs(loud["settle_limit"] - 0.086541) < 1e-6


def test_a_logged_noise_column_and_a_written_curve_give_the_same_verdict(tmp_path):
    run = tmp_path / "gan" / "version_0"
    run.mkdir(parents=True)
    l1 = [0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1]
    rows = [f"0,{100 * (k + 1) - 1},{v},{0.04 + 0.02 * (k % 2)}" for k, v in enumerate(l1)]
    (run / "metrics.csv").write_text("epoch,step,val/l1,val/se\n" + "\n".join(rows) + "\n")
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["--metric", "val/l1", "--lower-is-better", "--noise-metric", "val/se", "--out"]
    gan_curve.main([str(tmp_path / "gan"), *args, str(first)])
    gan_curve.main([str(first / "curve.csv"), *args, str(again)])
    record = json.loads((first / "plateau.json").read_text())
    # root mean square of 0.04, 0.06, 0.04, ... (five 0.04, four 0.06):
    # sqrt((5 x 0.0016 + 4 x 0.0036) / 9) = 0.049889
    assert abs(record["noise_sd"] - 0.049889) < 1e-6 and record["noise_metric"] == "val/se"
    repeated = json.loads((again / "plateau.json").read_text())
    # the run folder also tells how far it trained; its curve file does not
    assert record["trained_steps"] == 900 and "complete" not in record
    run_only = {"run", "trained_steps"}
    assert {k: v for k, v in repeated.items() if k != "run"} == {
        k: v for k, v in record.items() if k not in run_only
    }


def test_a_curve_file_without_the_metric_is_refused(tmp_path):
    (tmp_path / "curve.csv").write_text("step,val/l1\n100,0.1\n")
    with pytest.raises(SystemExit, match="no column"):
        gan_curve.main(
            [str(tmp_path / "curve.csv"), "--metric", "val/c2st", "--out", str(tmp_path / "o")]
        )


def test_a_run_stopped_before_its_budget_is_recorded_as_incomplete(tmp_path):
    l1 = [0.30, 0.20, 0.15, 0.12, 0.11, 0.105, 0.10, 0.10, 0.10]
    write_run(tmp_path / "gan", l1)  # logged up to step 900
    version = tmp_path / "gan" / "version_0"
    (version / "config.yaml").write_text("trainer:\n  max_steps: 2100\n")
    out = tmp_path / "curve"
    args = ["--metric", "val/l1", "--lower-is-better", "--out", str(out)]
    gan_curve.main([str(tmp_path / "gan"), *args])
    record = json.loads((out / "plateau.json").read_text())
    assert record["flattened"] and record["settled"]  # what its tail reads, so far
    assert (record["trained_steps"], record["max_steps"], record["complete"]) == (900, 2100, False)
    # a chunk that ended by its budget: complete
    (version / "summary_fit.json").write_text(json.dumps({"global_step": 2100, "max_steps": 2100}))
    gan_curve.main([str(tmp_path / "gan"), *args])
    record = json.loads((out / "plateau.json").read_text())
    assert (record["trained_steps"], record["complete"]) == (2100, True)


def test_an_epoch_budget_is_complete_only_when_a_chunk_ended_by_it(tmp_path):
    write_run(tmp_path / "gan", [0.30, 0.20, 0.15, 0.12, 0.11, 0.105, 0.10, 0.10, 0.10])
    version = tmp_path / "gan" / "version_0"
    (version / "config.yaml").write_text("trainer:\n  max_epochs: 48\n  max_steps: -1\n")
    out = tmp_path / "curve"
    args = [str(tmp_path / "gan"), "--metric", "val/l1", "--lower-is-better", "--out", str(out)]

    def extent(summary: dict) -> tuple:
        (version / "summary_fit.json").write_text(json.dumps({"max_steps": -1, **summary}))
        gan_curve.main(args)
        record = json.loads((out / "plateau.json").read_text())
        return record["trained_steps"], record["trained_epochs"], record["complete"]

    # the timer stopped the chunk inside epoch 47, which the loop counts as the 48th begun
    stopped = {"global_step": 3050, "epochs": 48, "stopped_by_chunk_timer": True}
    assert extent(stopped) == (3050, 48, False)
    ended = {"global_step": 3072, "epochs": 48, "stopped_by_chunk_timer": False}
    assert extent(ended) == (3072, 48, True)
    # ended by something else before its budget (early stopping, say)
    short = {"global_step": 1000, "epochs": 16, "stopped_by_chunk_timer": False}
    assert extent(short) == (1000, 16, False)
