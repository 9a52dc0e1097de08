"""A bounded, ordered thread-pool map: the one way floe runs I/O-bound work in parallel."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

__all__ = ["UNLIMITED_THREADS", "ordered_parallel"]

# the most threads one call starts when no limit is given (a limit of -1 in the manifest)
UNLIMITED_THREADS = 256

T = TypeVar("T")


R = TypeVar("R")


def ordered_parallel(
    items: Sequence[T], work: Callable[[T], R], limit: int | None
) -> Generator[R, None, None]:
    """``work(item)`` for every item, results in input order, at most ``limit`` submitted ahead.

    ``limit`` None: every item at once (on at most ``UNLIMITED_THREADS`` threads). Leaving the
    generator early cancels what has not started and waits for what has.
    """
    if not items:
        return
    ahead = len(items) if limit is None else limit
    pool = ThreadPoolExecutor(max_workers=max(1, min(ahead, len(items), UNLIMITED_THREADS)))
    queue: deque[Future[R]] = deque()
    remaining = iter(items)
    try:
        for item in islice(remaining, ahead):
            queue.append(pool.submit(work, item))
        while queue:
            result = queue.popleft().result()
            for item in islice(remaining, 1):
                queue.append(pool.submit(work, item))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
