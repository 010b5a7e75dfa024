"""logged_curve: one run name's logged metrics across its chunks (version folders)."""

from __future__ import annotations

import math

from histo_gan.runs import logged_curve


def write_metrics(folder, rows):
    folder.mkdir(parents=True)
    lines = ["epoch,step,train/loss,val/aji,val/dice"] + [",".join(map(str, r)) for r in rows]
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_chunks_continue_in_version_order_and_later_chunks_win(tmp_path):
    run = tmp_path / "curve"
    write_metrics(run / "version_0", [(0, 49, 0.9, "", ""), (0, 99, "", 0.2, 0.6)])
    write_metrics(run / "version_1", [(0, 99, "", 0.25, ""), (1, 199, "", 0.4, 0.7)])
    write_metrics(run / "version_10", [(2, 299, "", 0.5, 0.8)])  # 10 sorts after 1 and 2
    write_metrics(run / "version_2", [(1, 249, "", 0.45, 0.75)])
    curve = logged_curve(run, {"aji": "val/aji", "dice": "val/dice"})
    assert list(curve) == [100, 200, 250, 300]  # logged step + 1; training-only rows skipped
    assert curve[100]["aji"] == 0.25 and math.isnan(curve[100]["dice"])  # version 1 wins
    assert curve[300] == {"aji": 0.5, "dice": 0.8}


def test_a_run_without_logs_has_an_empty_curve(tmp_path):
    (tmp_path / "curve" / "version_0").mkdir(parents=True)
    assert logged_curve(tmp_path / "curve", {"aji": "val/aji"}) == {}
    assert logged_curve(tmp_path / "absent", {"aji": "val/aji"}) == {}
