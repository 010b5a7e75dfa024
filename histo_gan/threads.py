"""Thread budgets of the native libraries, so that processes running side by side do not
oversubscribe the CPU.

A process that runs next to others (a DDP process, a DataLoader worker, a ``histo-gan
synthesize --workers`` process) should use its share of the cores, not all of them. torch
follows ``torch.set_num_threads``, but OpenCV and OpenBLAS (numpy, scipy) keep pools of their
own, one thread per core, that ``OMP_NUM_THREADS`` does not reach once they are loaded (and a
forked worker inherits them loaded). :func:`limit_threads` sets both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2
from threadpoolctl import threadpool_limits

__all__ = ["limit_threads", "single_threaded_worker", "threads_limited"]


def limit_threads(n: int) -> None:
    """Let OpenCV and the BLAS libraries loaded in this process use at most ``n`` threads."""
    cv2.setNumThreads(max(1, n))
    # BLAS only: the OpenMP pool belongs to torch, which has its own setting.
    threadpool_limits(max(1, n), user_api="blas")


def single_threaded_worker(*_: object) -> None:
    """``initializer``/``worker_init_fn`` of worker processes: one thread each."""
    limit_threads(1)


@contextmanager
def threads_limited(n: int) -> Iterator[None]:
    """:func:`limit_threads` for a block, then the previous budgets again.

    Also what makes forking safe: OpenCV's thread pool does not survive a fork (a child that
    reconfigures an inherited pool waits forever on the parent's threads), so a process that
    forks workers runs single-threaded in here while it does.
    """
    before = cv2.getNumThreads()
    try:
        with threadpool_limits(max(1, n), user_api="blas"):
            cv2.setNumThreads(max(1, n))
            yield
    finally:
        cv2.setNumThreads(before)
