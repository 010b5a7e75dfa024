"""Where a setting of a ``histo-gan`` command line got its value, for error messages.

LightningCLI applies ``--config`` files and ``--key value`` options from left to right, the
last one winning; :func:`origin_of` follows the same order to say which of them set a key (a
config that overlays others stands for them and itself, :mod:`histo_gan.config_files`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from histo_gan.config_files import CONFIG_OPTIONS, with_overlays

__all__ = ["origin_of"]


def _sets(config: object, parts: Sequence[str]) -> bool:
    """Whether the nested mapping ``config`` holds ``parts`` (``init_args`` levels skipped)."""
    node = config
    for part in parts:
        if isinstance(node, dict) and part not in node and isinstance(node.get("init_args"), dict):
            node = node["init_args"]
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _file_sets(path: str, parts: Sequence[str]) -> bool:
    try:
        return _sets(yaml.safe_load(Path(path).read_text()), parts)
    except (OSError, yaml.YAMLError):
        return False


def origin_of(arguments: Sequence[str], key: str) -> str | None:
    """``"set in FILE"`` or ``"set on the command line"`` for the argument that gave ``key``
    (dotted, e.g. ``data.batch_size``) its value in ``arguments`` (those after the
    subcommand), or ``None`` when none of them sets it (the default)."""
    arguments = with_overlays(arguments, inline=False)
    parts = key.split(".")
    group = f"--{parts[0]}"
    found = None
    index = 0
    while index < len(arguments):
        name, inline, value = arguments[index].partition("=")
        following = arguments[index + 1] if index + 1 < len(arguments) else None
        path = value if inline else following
        name = name.replace(".init_args", "")
        if name in CONFIG_OPTIONS or name == group:  # a whole config, or one of a group
            within = parts if name in CONFIG_OPTIONS else parts[1:]
            if path is not None and Path(path).is_file() and _file_sets(path, within):
                found = f"set in {path}"
        elif name == f"--{key}":
            found = "set on the command line"
        index += 1 if inline or name not in (*CONFIG_OPTIONS, group, f"--{key}") else 2
    return found
