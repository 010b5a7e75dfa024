"""An exclusive, crash-safe lock on a dataset folder: one writer at a time.

The lock is a POSIX record lock (``fcntl.lockf``) on ``<folder>/.lock``, a file that also
names its holder (pid, host, start time) so that a refused writer can say who holds it. The
kernel drops the lock when its process dies, however it dies: a lock file left by a killed
writer holds no lock and is simply taken over (and reported as such). Record locks belong to
the process, not to its file descriptors, so forked workers never hold the lock, and they
work on NFS. Record locks do not exclude two lockers in one process, so this module keeps a
registry of the folders locked by this process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from histo_gan.readers import DataError

__all__ = ["LOCK_NAME", "DatasetLock", "DatasetLocked"]

LOCK_NAME = ".lock"

_held_here: dict[Path, int] = {}  # folders locked by this process -> lock file descriptor


class DatasetLocked(DataError):
    """Another writer holds the dataset."""


def _describe(holder: dict) -> str:
    since = holder.get("since")
    when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}{when}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class DatasetLock:
    """``with DatasetLock(folder):`` holds the folder's lock or raises :class:`DatasetLocked`.

    Attributes:
        previous_holder: after :meth:`acquire`, the holder recorded by a writer that died
            without releasing the lock (``{"pid", "host", "since", "alive"}``), else ``None``.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.previous_holder: dict | None = None
        self._fd: int | None = None

    def acquire(self) -> DatasetLock:
        key = self.folder.resolve()
        if key in _held_here:
            raise DatasetLocked(
                f"{self.folder}: {self._refusal(self._read_holder(_held_here[key]))}"
            )
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = self._read_holder(fd)
                os.close(fd)  # closing drops only this process's locks: it held none here
                if error.errno in (errno.EACCES, errno.EAGAIN):
                    raise DatasetLocked(f"{self.folder}: {self._refusal(holder)}") from None
                raise DataError(
                    f"{self.path}: cannot lock the dataset ({error.strerror}); the folder must "
                    "be on a file system with POSIX locks"
                ) from error
            if self._is_current_file(fd):
                break
            os.close(fd)  # the holder removed this file as we opened it: lock the new one
        previous = self._read_holder(fd)
        if previous.get("pid") is not None:
            alive = previous.get("host") == socket.gethostname() and _pid_alive(previous["pid"])
            self.previous_holder = {**previous, "alive": alive}
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        _held_here[key] = fd
        return self

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in that order: see :meth:`acquire`)."""
        if self._fd is None:
            return
        _held_here.pop(self.folder.resolve(), None)
        try:
            os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DatasetLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _is_current_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _read_holder(fd: int) -> dict:
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    @staticmethod
    def _refusal(holder: dict) -> str:
        return (
            f"another writer holds the dataset ({_describe(holder)}); wait for it to finish "
            "or stop it, then run again to resume"
        )
