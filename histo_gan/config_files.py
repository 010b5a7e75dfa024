"""Config files that overlay other config files.

A config file may name the configs it overlays, ``overlays: <config>`` (or a list of them,
applied left to right; paths relative to the file itself). It then holds only what it changes,
and::

    histo-gan fit --config conf/experiment/baseline_unet_tiny.yaml

means the same as giving every config it overlays first, each as its own ``--config``, then
the file's own settings. A tiny config is its paper config plus the keys that make it small
(``conf/experiment/*_tiny.yaml``, ``conf/model/*_tiny.yaml``).

:func:`with_overlays` makes that expansion on a command line. Each config is a ``--config`` of
its own because that is how LightningCLI merges configs: a later config that names the same
``class_path`` merges into the earlier ``init_args``, another ``class_path`` replaces them and a
list (``trainer.callbacks``) is replaced unless the later config appends with ``key+:``. (A
config file that names another config under jsonargparse's own ``config:`` key does not merge
that way: its partial ``init_args`` replace or fail instead.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from histo_gan.readers import DataError

__all__ = ["CONFIG_OPTIONS", "OVERLAYS", "overlaid_files", "overlays_of", "with_overlays"]

OVERLAYS = "overlays"
CONFIG_OPTIONS = ("--config", "-c")
_OVERLAYS_LINE = re.compile(rf"^{OVERLAYS}\s*:")


def _load(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DataError(f"{path}: cannot read the config file ({error})") from error


def _is_file(value: str) -> bool:
    """Whether a ``--config`` value names a file (it may also be a config string)."""
    try:
        return Path(value).is_file()
    except (OSError, ValueError):  # too long or not a path at all
        return False


def overlays_of(path: str | Path) -> list[str]:
    """The configs that the config file ``path`` overlays, as paths usable from here (relative
    to the working directory when ``path`` is), in order; ``[]`` for a plain config."""
    path = Path(path)
    content = _load(path)
    if not isinstance(content, dict) or OVERLAYS not in content:
        return []
    bases = content[OVERLAYS]
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not bases or not all(isinstance(b, str) for b in bases):
        raise DataError(f"{path}: '{OVERLAYS}' must name a config file or a list of them")
    resolved = [os.path.normpath(path.parent / base) for base in bases]
    for base, name in zip(resolved, bases):
        if not Path(base).is_file():
            raise DataError(f"{path}: {OVERLAYS} {name}: no such config file ({base})")
    return resolved


def overlaid_files(path: str | Path, _seen: tuple[str, ...] = ()) -> list[str]:
    """Every config file that ``path`` stands for, bases first and ``path`` last."""
    path = os.path.normpath(path)
    if path in _seen:
        raise DataError(f"{path}: overlays itself ({' -> '.join([*_seen, path])})")
    files: list[str] = []
    for base in overlays_of(path):
        files += overlaid_files(base, (*_seen, path))
    return [*files, path]


def _own_settings(path: str) -> str:
    """The text of the config file ``path`` without its ``overlays`` entry (a config string
    that LightningCLI reads as it reads the file)."""
    lines, kept, skipping = Path(path).read_text().splitlines(keepends=True), [], False
    for line in lines:
        if _OVERLAYS_LINE.match(line):
            skipping = True
            continue
        continued = line.startswith((" ", "\t", "- ")) or line.strip() in ("", "-")
        if skipping and continued:
            continue
        skipping = False
        kept.append(line)
    text = "".join(kept)
    expected = {k: v for k, v in _load(Path(path)).items() if k != OVERLAYS}
    if (yaml.safe_load(text) or {}) != expected:  # a layout the line filter does not know
        text = yaml.safe_dump(expected, sort_keys=False)
    return text


def with_overlays(arguments: Sequence[str], inline: bool = True) -> list[str]:
    """``arguments`` with each ``--config FILE`` (``-c``, ``--config=FILE``) of a file that
    overlays others replaced by one ``--config`` per file it stands for, bases first.

    With ``inline`` a file that overlays others is given as its settings without the
    ``overlays`` entry (a config string, which LightningCLI reads as it reads the file); without
    it every file is given by its path (for reading the files, as :mod:`histo_gan.config_origin`
    does). A plain config stays exactly as it was given.
    """
    out: list[str] = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        name, inline_value, value = argument.partition("=")
        if name not in CONFIG_OPTIONS or (not inline_value and index + 1 >= len(arguments)):
            out.append(argument)
            index += 1
            continue
        if not inline_value:
            value = arguments[index + 1]
        index += 1 if inline_value else 2
        files = overlaid_files(value) if _is_file(value) else []
        if len(files) <= 1:
            files = [value]
        for file in files:
            given = _own_settings(file) if inline and len(files) > 1 and overlays_of(file) else file
            out += [f"{name}={given}"] if inline_value else [name, given]
    return out
