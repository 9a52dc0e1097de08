"""Wait for a DuckDB file's write lock before dbt opens it, or fail saying who holds it.

DuckDB allows one writing process per database file: it takes a POSIX write lock (``fcntl``
``F_SETLK`` on the whole file) when it opens it. Two ``floe run`` with separate Dagster
instances (whose compute pools cannot serialise them) on one DuckDB file used to leave the
second to fail deep inside dbt with DuckDB's lock error. Before dbt starts on a DuckDB file,
``wait_for_file_lock`` asks the kernel who holds the lock (``F_GETLK``: nothing is taken, and a
lock of this very process never conflicts), waits for it to go away, bounded by the target's
``lock_wait_seconds`` and logged, then fails naming the process that holds it and what to do.

Linux's ``struct flock`` layout is used; elsewhere nothing is checked (DuckDB's own error stays).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import sys
import time
from pathlib import Path

from floe_dagster.core.errors import ComputeError

logger = logging.getLogger("floe_dagster.duckdb")

# struct flock on Linux (64-bit off_t): short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid, padded to 32 bytes
_FLOCK = "hhqqi4x"


class DuckDBFileLockedError(ComputeError):
    """Another process holds the DuckDB file's write lock (retryable: it may finish)."""

    retryable = True


def lock_holder(path: str | os.PathLike[str]) -> int | None:
    """The PID of another process holding a lock that stops this one writing ``path``, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no file yet (DuckDB creates it), or unreadable: DuckDB will say
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        kind, _whence, _start, _length, pid = struct.unpack(_FLOCK, answer)
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else int(pid)


def describe_process(pid: int) -> str:
    """``PID 123 (floe run -m manifests/manifest.yaml)``: its command line when /proc shows it."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"PID {pid}"
    command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    if len(command) > 160:
        command = command[:157] + "..."
    return f"PID {pid} ({command})" if command else f"PID {pid}"


def wait_for_file_lock(
    path: str | os.PathLike[str],
    wait_seconds: float,
    compute: str,
    *,
    poll_seconds: float = 0.5,
    log_every_seconds: float = 10.0,
) -> float:
    """Return once no other process holds ``path``'s lock (the seconds waited), waiting at most
    ``wait_seconds`` and logging while it waits; else raise DuckDBFileLockedError."""
    started = time.monotonic()
    logged_at: float | None = None
    while True:
        holder = lock_holder(path)
        waited = time.monotonic() - started
        if holder is None:
            if logged_at is not None:
                logger.warning("compute '%s': the DuckDB file %s is free after %.1f s", compute, path, waited)
            return waited
        if waited >= wait_seconds:
            raise DuckDBFileLockedError(
                f"compute '{compute}': the DuckDB file {path} is held by another process,"
                f" {describe_process(holder)}, which has its write lock (DuckDB allows one writing"
                f" process per file); waited {waited:.0f} s (lock_wait_seconds={wait_seconds:g})."
                " Wait for that process to finish or stop it, run both in one Dagster instance (its"
                " compute pool runs them one after the other), raise"
                f" computes.targets.{compute}.config.lock_wait_seconds, or give this run another"
                f" file (computes.targets.{compute}.config.path)",
                provider="duckdb",
                operation="open_database",
            )
        if logged_at is None or time.monotonic() - logged_at >= log_every_seconds:
            logged_at = time.monotonic()
            logger.warning(
                "compute '%s': the DuckDB file %s is held by %s; waiting up to %g s for its lock",
                compute,
                path,
                describe_process(holder),
                wait_seconds,
            )
        time.sleep(min(poll_seconds, max(0.0, wait_seconds - waited)) or poll_seconds)
