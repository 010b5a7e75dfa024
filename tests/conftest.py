"""Shared fixtures. Tests that need the real MoNuSeg data skip when ../shared/data is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MONUSEG = REPO_ROOT.parent / "shared" / "data" / "monuseg" / "train"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data/monuseg/train (images/, instance_masks/, annotations/)."""
    if not (SHARED_MONUSEG / "images").is_dir():
        pytest.skip(f"real MoNuSeg data not found at {SHARED_MONUSEG} (only in the project's CI)")
    return SHARED_MONUSEG


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


# What a Trainer without default_root_dir (or a datamodule without a run folder) writes into
# the working directory; `make test` fails when the suite leaves anything in the repository.
RUN_OUTPUTS = ("split.json", "checkpoints")


@pytest.fixture(autouse=True)
def nothing_written_into_the_repository():
    """Fails the test after which a run output appeared in the repository root (under
    pytest-xdist it may also come from a test running beside it: both are named in the log)."""
    before = {name for name in RUN_OUTPUTS if (REPO_ROOT / name).exists()}
    yield
    new = {name for name in RUN_OUTPUTS if (REPO_ROOT / name).exists()} - before
    assert not new, (
        f"a test wrote {sorted(new)} into {REPO_ROOT}: give its Trainer default_root_dir"
    )
