"""Organ metadata: which organ an image comes from, kept as data (a CSV of name prefixes)."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from histo_gan.readers import DataError
from histo_gan.types import UNKNOWN_ORGAN

__all__ = ["OrganTable"]


class OrganTable:
    """Maps image ids to organs by the longest matching file-name prefix.

    Args:
        path: a CSV with columns ``prefix,organ`` (lines starting with ``#`` are comments).
            ``None`` loads the bundled MoNuSeg 2018 training-set table.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            text = resources.files("histo_gan.data").joinpath("monuseg_organs.csv").read_text()
            where = "histo_gan/data/monuseg_organs.csv"
        else:
            path = Path(path)
            if not path.is_file():
                raise DataError(f"{path}: organ table does not exist")
            text = path.read_text()
            where = str(path)
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        reader = csv.DictReader(lines)
        if reader.fieldnames is None or not {"prefix", "organ"} <= set(reader.fieldnames):
            raise DataError(f"{where}: organ table needs the columns 'prefix,organ'")
        self.prefix_to_organ: dict[str, str] = {}
        for row in reader:
            prefix, organ = row["prefix"].strip(), row["organ"].strip()
            if not prefix or not organ:
                raise DataError(f"{where}: empty prefix or organ in row {row}")
            self.prefix_to_organ[prefix] = organ

    def organ_of(self, image_id: str) -> str:
        """The organ of ``image_id``, or ``"unknown"`` when no prefix matches."""
        best = ""
        for prefix in self.prefix_to_organ:
            if image_id.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self.prefix_to_organ[best] if best else UNKNOWN_ORGAN

    @property
    def organs(self) -> list[str]:
        return sorted(set(self.prefix_to_organ.values()))
