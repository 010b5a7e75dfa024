"""``histo-gan --help``: one page with every command, the same as the README's table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from histo_gan.cli import COMMANDS, LIGHTNING_COMMANDS, TOOLS, main

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_command_with_its_line(capsys):
    assert main(["--help"]) == 0
    page = capsys.readouterr().out
    assert set(LIGHTNING_COMMANDS) == set(LightningCLI.subcommands())
    assert set(COMMANDS) == set(LIGHTNING_COMMANDS) | set(TOOLS)
    for name, line in COMMANDS.items():
        assert re.search(rf"^  {name} +{re.escape(line)}$", page, re.MULTILINE), name


def test_console_script_help_and_no_command(capsys):
    shown = subprocess.run(
        [sys.executable, "-m", "histo_gan.cli", "-h"], cwd=REPO, capture_output=True, text=True
    )
    assert shown.returncode == 0 and "synthesize" in shown.stdout and "evaluate" in shown.stdout
    assert main([]) == 2
    assert "usage: histo-gan COMMAND" in capsys.readouterr().err


def test_unknown_command_names_it_and_the_commands(capsys):
    assert main(["synthesise", "--n", "3"]) == 2
    error = capsys.readouterr().err
    assert "unknown command 'synthesise'" in error and "synthesize" in error and "fit" in error


def test_readme_command_table_matches_the_help():
    running = (REPO / "README.md").read_text().split("## Running", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `histo-gan (\w+)` \| (.+?) \|$", running, re.MULTILINE))
    assert rows == COMMANDS
