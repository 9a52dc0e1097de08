"""A copy of the project laid out as a fresh clone after `make install`: the demo (manifests/,
dbt_project/, definitions.py), Makefile, pyproject.toml, scripts/ and the test venv linked as
.venv, so `make demo` / `make dev` run in it as a newcomer would run them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.helpers import REPO, VENV_BIN, copy_demo_project

# what the Makefile and definitions.py read from the environment; a clone starts without them
PROJECT_VARIABLES = ("DAGSTER_HOME", "FLOE_MANIFEST", "FLOE_ENV", "FLOE_PLAN", "FLOE_STATE_DIR", "DEV_PORT")


def clone_project(destination: Path, parsed_from: Path | None = None) -> Path:
    root = copy_demo_project(destination, parsed_from=parsed_from)
    for name in ("Makefile", "pyproject.toml"):  # copy2 keeps the mtime: the install stamp stays newer
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "scripts", root / "scripts")
    (root / ".venv").symlink_to(VENV_BIN.parent)
    return root


# What a make running the tests (`make test`) passes to its children: a `make demo` started under it
# would act as a sub-make ("make[1]: Entering directory ..."), which a user's shell never sees.
MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def clean_environment() -> dict[str, str]:
    """The environment of a user's shell: no project variables, no warnings filter, no make of ours."""
    dropped = {*PROJECT_VARIABLES, "PYTHONWARNINGS", *MAKE_VARIABLES}
    return {k: v for k, v in os.environ.items() if k not in dropped}
