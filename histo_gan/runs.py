"""Run folders: the one place where a run's files go.

Every ``histo-gan fit|validate|test|predict`` writes into its own folder
``<root>/<name>/version_<N>/`` (``root`` is ``trainer.default_root_dir``, ``runs`` unless
given; ``name`` is ``--name``). ``N`` is one more than the highest existing version, so a
second run of the same config never touches the first one's files. The folder holds
``config.yaml``, ``split.json``, ``summary_<stage>.json``, the loggers' files, metric tables
and plots, and ``checkpoints/`` with ``last.ckpt`` (the latest state) and ``best.ckpt`` (the
best by the monitored metric).

Code running inside a run finds the folder as ``trainer.log_dir`` (the CLI makes every
logger, and the no-logger case, point there).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHECKPOINT_ALIASES",
    "RunFolder",
    "find_checkpoint",
    "logged_curve",
    "next_version",
    "versions",
]

CHECKPOINT_ALIASES = ("last", "best")
_VERSION = re.compile(r"^version_(\d+)$")


def versions(root: str | Path, name: str) -> list[int]:
    """The version numbers of the existing runs of ``name`` under ``root``, ascending."""
    folder = Path(root) / name
    if not folder.is_dir():
        return []
    found = (_VERSION.match(entry.name) for entry in folder.iterdir() if entry.is_dir())
    return sorted(int(match.group(1)) for match in found if match)


def next_version(root: str | Path, name: str) -> int:
    """One more than the highest existing version of ``name`` (0 for the first run)."""
    return (versions(root, name) or [-1])[-1] + 1


@dataclass(frozen=True)
class RunFolder:
    """``<root>/<name>/version_<version>``."""

    root: Path
    name: str
    version: int

    @property
    def path(self) -> Path:
        return self.root / self.name / f"version_{self.version}"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @classmethod
    def create(cls, root: str | Path, name: str) -> RunFolder:
        """Claim the next free version (``mkdir`` is atomic, so concurrent runs never share)."""
        root = Path(root)
        (root / name).mkdir(parents=True, exist_ok=True)
        version = next_version(root, name)
        while True:
            run = cls(root, name, version)
            try:
                os.mkdir(run.path)
                return run
            except FileExistsError:
                version += 1

    @classmethod
    def at(cls, path: str | Path) -> RunFolder:
        """The run folder at an existing ``<root>/<name>/version_<N>`` path."""
        path = Path(path)
        match = _VERSION.match(path.name)
        if not match:
            raise ValueError(f"{path}: not a run folder (expected .../<name>/version_<N>)")
        return cls(path.parent.parent, path.parent.name, int(match.group(1)))

    def remove_if_empty(self) -> bool:
        """Delete the folder when nothing was written into it (empty subfolders count as nothing)."""
        if not self.path.is_dir():
            return False
        if any(p.is_file() or p.is_symlink() for p in self.path.rglob("*")):
            return False
        for folder in sorted(self.path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            folder.rmdir()
        self.path.rmdir()
        return True

    def discard_unless_trained(self) -> bool:
        """Delete the folder of a run that failed before saving any checkpoint."""
        if not self.path.is_dir() or any(self.checkpoints.glob("*.ckpt")):
            return False
        shutil.rmtree(self.path)
        return True


def find_checkpoint(root: str | Path, name: str, alias: str) -> Path | None:
    """``checkpoints/<alias>.ckpt`` of the newest run of ``name`` that has one, else None."""
    if alias not in CHECKPOINT_ALIASES:
        raise ValueError(f"checkpoint alias must be one of {CHECKPOINT_ALIASES}, got {alias!r}")
    for version in reversed(versions(root, name)):
        path = RunFolder(Path(root), name, version).checkpoints / f"{alias}.ckpt"
        if path.is_file():
            return path
    return None


def logged_curve(run: str | Path, metrics: dict[str, str]) -> dict[int, dict[str, float]]:
    """The logged values of ``metrics`` over training, from every version of one run name.

    ``run`` is ``<root>/<name>``; its ``version_*/metrics.csv`` (the CSV logger's, one per
    chunk of a chunked run, whose steps continue) are read in version order and later
    versions win at a repeated step. ``metrics`` maps the names to return to the logged column
    names (``{"aji": "val/aji"}``); a row counts when it logs the first of them, and a missing
    or empty column in such a row reads as NaN. Returns ``{steps trained: {name: value}}``:
    Lightning logs at the index of the last training batch, so the step is that index + 1.
    """
    columns = list(metrics.values())
    curve: dict[int, dict[str, float]] = {}
    for version in versions(Path(run).parent, Path(run).name):
        path = Path(run) / f"version_{version}" / "metrics.csv"
        if not path.is_file():
            continue
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if not row.get(columns[0]):
                    continue
                curve[int(row["step"]) + 1] = {
                    name: float(row[column]) if row.get(column) else float("nan")
                    for name, column in metrics.items()
                }
    return dict(sorted(curve.items()))
