"""Which process of a distributed job this is, known before Lightning is set up.

Lightning knows a process's global rank once its Trainer exists, but the run folder is
claimed before that, and by one process only. The launchers histo-gan runs under tell every
process its place in the environment: torchrun (``RANK``, ``GROUP_RANK``, ``LOCAL_RANK``),
SLURM's ``srun`` (``SLURM_PROCID``), Lightning's own launcher and a by-hand multi-node start
(``NODE_RANK``, ``LOCAL_RANK``), jsrun on LSF (``JSM_NAMESPACE_RANK``). These are the variables
Lightning reads for its rank-zero-only logging, plus the node index.
"""

from __future__ import annotations

import os

__all__ = ["RANK_VARIABLES", "is_first_process", "leave_process_group"]

RANK_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "SLURM_PROCID",
    "JSM_NAMESPACE_RANK",
    "NODE_RANK",
    "GROUP_RANK",
)


def is_first_process(environ: dict[str, str] | None = None) -> bool:
    """False when a rank variable names another process than the job's first (global rank 0)."""
    environ = os.environ if environ is None else environ
    for name in RANK_VARIABLES:
        value = environ.get(name, "0").strip() or "0"
        if value.isdigit() and int(value) != 0:
            return False
    return True


def leave_process_group() -> None:
    """Destroy the job's process group, if this process joined one, before the interpreter exits.

    Lightning leaves the group standing after ``fit``/``test``/``predict``. Left to the
    interpreter's shutdown, the gloo group's threads may be torn down in the wrong order and
    abort the process ("terminate called without an active exception", status -6) after the
    work is done and written, which a launcher reports as a failed job.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
