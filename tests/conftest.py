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
