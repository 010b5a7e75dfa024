"""Atomic text writes keep the old file when a write fails and leave no temporary files."""

from __future__ import annotations

import pytest

from histo_gan.files import write_text_atomic


def test_write_creates_folders_and_replaces_the_file(tmp_path):
    path = tmp_path / "a" / "b" / "x.json"
    write_text_atomic(path, "one")
    write_text_atomic(path, "two")
    assert path.read_text() == "two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "x.txt"
    write_text_atomic(path, "old")
    with pytest.raises(TypeError):
        write_text_atomic(path, 123)  # not text
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
