"""Dagster's warnings about APIs floe calls on purpose, silenced at the call and nowhere else.

- ``multi_observable_source_asset`` is beta (BetaWarning): it is the only way to observe many
  tables in one step.
- ``build_last_update_freshness_checks`` and ``build_sensor_for_freshness_checks`` are superseded
  by ``FreshnessPolicy`` (SupersessionWarning), but Dagster 1.13's freshness daemon judges a
  policy by materialisations only, and a metastore table is observed, never materialised: the
  last-update check (which reads the observation's ``dagster/last_updated_timestamp``) is what
  judges it. floe attaches ``FreshnessPolicy`` to the same assets too.

Each filter matches the warning class and the function's name in the message, so any other
warning of Dagster (or a new one about these functions) still reaches the user.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def calling_on_purpose(category: type[Warning], *function_names: str) -> Iterator[None]:
    """Inside the block, ignore ``category`` warnings about the named functions only."""
    with warnings.catch_warnings():
        for name in function_names:
            warnings.filterwarnings("ignore", message=rf".*`{re.escape(name)}`", category=category)
        yield
