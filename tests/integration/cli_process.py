"""``histo-gan`` in a process of its own, for the tests that need one (DDP's launcher starts
the other processes from the command line it was given)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def histo_gan_process(*args: str, cwd: Path, timeout: float = 600) -> str:
    """Run ``python -m histo_gan.cli ARGS`` in ``cwd`` and return its stdout and stderr
    together; fails the test with the end of its stderr when it exits non-zero."""
    result = subprocess.run(
        [sys.executable, "-m", "histo_gan.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr
