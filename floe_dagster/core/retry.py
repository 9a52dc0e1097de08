"""The one retry policy: tenacity with exponential backoff, for every call floe retries.

Every plugin that retries (the REST catalog, the Hive, Glue and Dataproc metastores) builds its
``tenacity.Retrying`` here, so attempts, backoff, jitter and re-raising mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
    wait_random_exponential,
)
from tenacity.wait import wait_base

__all__ = ["Jitter", "retry_policy"]

# none: backoff, 2x, 4x ... capped; full: a random wait up to that (AWS's "full jitter");
# added: that plus up to one backoff of random jitter
Jitter = Literal["none", "full", "added"]


def retry_policy(
    *,
    attempts: int,
    retry_on: Callable[[BaseException], bool],
    backoff_s: float,
    backoff_max_s: float,
    jitter: Jitter = "full",
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """``attempts`` in all (the first included), retrying only exceptions ``retry_on`` accepts;
    the last exception is re-raised as it is (callers map it to floe's errors)."""
    wait: wait_base
    if jitter == "full":
        wait = wait_random_exponential(multiplier=backoff_s, max=backoff_max_s)
    else:
        wait = wait_exponential(multiplier=backoff_s, max=backoff_max_s)
        if jitter == "added":
            wait = wait + wait_random(0, backoff_s)
    return Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait,
        retry=retry_if_exception(retry_on),
        before_sleep=before_sleep,
        reraise=True,
    )
