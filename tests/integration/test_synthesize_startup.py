"""``histo-gan synthesize`` start-up: sources analysed once and shared, default workers, no hang."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from histo_gan.data.sources import bundled_sample_dir
from histo_gan.data.synthetic import SyntheticDataset
from histo_gan.synthesis import cli
from histo_gan.synthesis.pipeline import InitialSynthesis

SOURCE = bundled_sample_dir() / "images"
REPO = Path(__file__).resolve().parents[2]


def arguments(out: Path, *extra: str) -> list[str]:
    return [
        "--source",
        str(SOURCE),
        "--out",
        str(out),
        "--n",
        "12",
        "--size",
        "64",
        "--seed",
        "5",
        "--grid",
        "0",
        *extra,
    ]


def test_default_worker_count_is_the_cores_available(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert cli.available_cores() == 3
    assert cli._parse(arguments(tmp_path / "a")).workers == 3
    assert cli._parse(arguments(tmp_path / "a", "--workers", "1")).workers == 1


def test_each_source_tile_is_prepared_once_and_shared_with_the_workers(monkeypatch, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()

    class Counting(InitialSynthesis):
        """Leaves one file per tile preparation, in whichever process made it."""

        def make_tile(self, index):
            (calls / f"{index}-{os.getpid()}-{uuid.uuid4().hex}").touch()
            return super().make_tile(index)

    build = cli.METHODS["hou"]
    monkeypatch.setitem(
        cli.METHODS,
        "hou",
        lambda a: Counting(build(a).images, cli.RandomPolygonMasks(), a.size, a.seed),
    )
    assert cli.main(arguments(tmp_path / "two", "--workers", "2")) == 0
    prepared = sorted(int(p.name.split("-")[0]) for p in calls.iterdir())
    assert prepared == list(range(6)), prepared  # 6 bundled images, each analysed once
    assert {p.name.split("-")[1] for p in calls.iterdir()} - {str(os.getpid())}  # by workers
    assert len(SyntheticDataset(tmp_path / "two")) == 12

    for p in calls.iterdir():
        p.unlink()
    assert cli.main(arguments(tmp_path / "one", "--workers", "1")) == 0
    assert len(list(calls.iterdir())) == 6
    for name in ("images/000007.png", "labels/000011.png", "manifest.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_workers_start_in_the_console_command_after_opencv_ran_threads(tmp_path):
    """Through ``histo-gan`` (torch and Lightning loaded) forked workers used to wait forever
    reconfiguring the OpenCV thread pool inherited from the parent."""
    script = (
        "import sys, cv2, numpy as np\n"
        "from histo_gan.cli import main\n"
        "cv2.setNumThreads(2)\n"
        "cv2.GaussianBlur(np.zeros((3000, 3000), np.float32), (31, 31), 5)  # starts the pool\n"
        f"sys.exit(main(['synthesize', *{arguments(tmp_path / 'out', '--workers', '2')!r}]))\n"
    )
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(SyntheticDataset(tmp_path / "out")) == 12
