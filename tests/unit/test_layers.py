"""The layer rules of pyproject.toml hold, and the checker would notice a broken one."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli comes with import-linter
    import tomli as tomllib

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root), "PATH": ""},
    )


def test_the_layer_contracts_hold(repo_root):
    result = lint_imports(repo_root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_forbidden_import_breaks_the_contracts(repo_root, tmp_path):
    shutil.copytree(
        repo_root / "histo_gan",
        tmp_path / "histo_gan",
        ignore=shutil.ignore_patterns("__pycache__", "sample_data"),
    )
    shutil.copy(repo_root / "pyproject.toml", tmp_path / "pyproject.toml")
    leak = tmp_path / "histo_gan" / "networks" / "leak.py"
    leak.write_text("from histo_gan.data.datamodule import HistoDataModule\n")
    masks = tmp_path / "histo_gan" / "synthesis" / "masks.py"
    masks.write_text(masks.read_text() + "\nfrom histo_gan.data.sources import ImageFolder\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "networks and losses are pure torch BROKEN" in result.stdout
    assert "synthesis does not import the data layer BROKEN" in result.stdout


def test_the_synthesis_contract_names_every_synthesis_module_but_the_tool(repo_root):
    """The contract lists modules one by one (the tool may import data): a new module is added."""
    contracts = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [
        c for c in contracts["contracts"] if c["name"] == "synthesis does not import the data layer"
    ]
    package = repo_root / "histo_gan" / "synthesis"
    modules = {f"histo_gan.synthesis.{p.stem}" for p in package.glob("*.py")}
    expected = modules - {"histo_gan.synthesis.__init__", "histo_gan.synthesis.cli"}
    assert set(contract["source_modules"]) == expected | {"histo_gan.synthesis"}


def test_importing_synthesis_and_the_contracts_loads_no_torch():
    code = (
        "import sys, histo_gan.synthesis, histo_gan.synthesis.cli, histo_gan.types; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def project_imports_in_functions(package: Path) -> list[str]:
    """``file:line module`` of every import of a project module inside a function body."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom):
                    module = node.module or ""
                    if node.level > 0 or module.split(".")[0] == package.name:
                        found.append(f"{path}:{node.lineno} {'.' * node.level}{module}")
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.split(".")[0] == package.name:
                            found.append(f"{path}:{node.lineno} {alias.name}")
    return sorted(set(found))


def test_project_modules_are_imported_at_module_level(repo_root):
    """Imports sit at the top of a module: one inside a function hides a cycle until it runs."""
    found = project_imports_in_functions(repo_root / "histo_gan")
    assert not found, "project imports inside functions:\n" + "\n".join(found)


def test_the_scan_finds_an_import_inside_a_function(tmp_path):
    package = tmp_path / "histo_gan"
    package.mkdir()
    (package / "ok.py").write_text("import os\nfrom histo_gan import types\n")
    (package / "bad.py").write_text(
        "def f():\n    import os\n    from histo_gan.data import sources\n\n"
        "class C:\n    def g(self):\n        from . import ok\n"
    )
    assert project_imports_in_functions(package) == [
        f"{package / 'bad.py'}:3 histo_gan.data",
        f"{package / 'bad.py'}:7 .",
    ]
