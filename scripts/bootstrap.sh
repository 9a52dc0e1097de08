#!/usr/bin/env bash
# Create .venv and install floe-dagster with its dev extra. Idempotent: a second run with an
# unchanged pyproject.toml only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9
stamp=.venv/.floe-installed

if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/dagster ]; then
  exit 0
fi

if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  echo "bootstrap: installing uv $UV_VERSION" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" 2>&1 | grep -v "WARNING: Running pip as the 'root' user" >&2 || true
fi
[ -x .venv/bin/python ] || "$PYTHON" -m uv venv --quiet .venv --python "$PYTHON"
echo "bootstrap: installing floe-dagster and its dependencies into .venv" >&2
# Bytecode is compiled at install time: these machines set PYTHONDONTWRITEBYTECODE, and every
# dbt / dagster start would otherwise recompile (about 10 s instead of 4-5 s).
"$PYTHON" -m uv pip install --quiet --python .venv/bin/python --compile-bytecode -e '.[dev]'
touch "$stamp"
