#!/usr/bin/env bash
# Create .venv and install floe-dagster with its dev extra. Idempotent: a second run with an
# unchanged pyproject.toml only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9
stamp=.venv/.floe-installed

# PostgreSQL 15 for the tests that start a real server (tests/fixtures/postgres.py; under CI=true
# they fail, not skip, without it). Installed only when missing and only as root with apt-get
# (Debian/Ubuntu); otherwise a note says what to install, and the Python setup goes on.
ensure_postgres() {
  local bindir=${FLOE_PG_BINDIR:-/usr/lib/postgresql/15/bin}
  if [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && [ -x "$bindir/postgres" ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: PostgreSQL 15 not found in $bindir; installing postgresql-15 with apt-get" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >&2; then
      return 0
    fi
    echo "bootstrap: could not install postgresql-15; the PostgreSQL tests will not run" >&2
  else
    echo "bootstrap: PostgreSQL 15 not found in $bindir; the PostgreSQL tests need it" \
      "(apt-get install postgresql-15 as root, or set FLOE_PG_BINDIR to its bin folder)" >&2
  fi
}
ensure_postgres

# A JDK 17 (java and javac) for the tests that start a real Hive Metastore and Spark
# (tests/fixtures/hive_metastore.py compiles a small launcher with javac; under CI=true they fail,
# not skip, without it). Installed only when missing and only as root with apt-get, like PostgreSQL.
ensure_jdk() {
  if command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: java/javac not found; installing openjdk-17-jdk-headless with apt-get" >&2
    # Debian's JDK post-install scripts expect the man folders (absent on slim images).
    mkdir -p /usr/share/man/man1
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless >&2; then
      return 0
    fi
    echo "bootstrap: could not install openjdk-17-jdk-headless; the Hive Metastore and Spark tests will not run" >&2
  else
    echo "bootstrap: java and javac not found; the Hive Metastore and Spark tests need a JDK 17" \
      "(apt-get install openjdk-17-jdk-headless as root)" >&2
  fi
}
ensure_jdk

# MariaDB (Debian's mariadb-server) for the MySQL-protocol computes' tests (tests/fixtures/mariadb.py
# starts its own mariadbd on loopback; under CI=true they fail, not skip, without it). Installed only
# when missing and only as root with apt-get, like PostgreSQL; the packaged service is not used.
ensure_mariadb() {
  if [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: mariadbd not found; installing mariadb-server with apt-get" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >&2; then
      return 0
    fi
    echo "bootstrap: could not install mariadb-server; the MySQL-protocol compute tests will not run" >&2
  else
    echo "bootstrap: mariadbd not found; the MySQL-protocol compute tests need it" \
      "(apt-get install mariadb-server as root)" >&2
  fi
}
ensure_mariadb

# Debian's clickhouse-server (18.16, the only ClickHouse server on the reachable registries) for
# tests/fixtures/clickhouse.py, which records what the ClickHouse compute can and cannot do on it.
ensure_clickhouse() {
  if [ -x /usr/sbin/clickhouse-server ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: clickhouse-server not found; installing it with apt-get" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clickhouse-server >&2; then
      return 0
    fi
    echo "bootstrap: could not install clickhouse-server; the ClickHouse server tests will not run" >&2
  else
    echo "bootstrap: clickhouse-server not found; the ClickHouse server tests need it" \
      "(apt-get install clickhouse-server as root)" >&2
  fi
}
ensure_clickhouse

# The npm test servers (tests/fixtures/s3rver_server.py: s3rver, a second S3 server beside moto;
# Azurite, the Azure Storage emulator) into .floe/npm (git-ignored, not a global install; the
# fixtures look there, or in FLOE_NPM_PREFIX). Installed only when missing; needs Node.js and npm
# (under CI=true their tests fail, not skip, without them).
FLOE_NPM_SERVERS="s3rver@3.7.1 azurite@3.37.0"
ensure_npm_servers() {
  local prefix=${FLOE_NPM_PREFIX:-.floe/npm} missing=0 package
  for package in $FLOE_NPM_SERVERS; do
    [ -e "$prefix/node_modules/.bin/${package%@*}" ] || missing=1
  done
  [ "$missing" = 0 ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: npm not found; the s3rver and Azurite tests need Node.js and npm" \
      "(apt-get install nodejs npm as root)" >&2
    return 0
  fi
  echo "bootstrap: installing $FLOE_NPM_SERVERS into $prefix with npm" >&2
  mkdir -p "$prefix"
  # shellcheck disable=SC2086
  npm install --silent --no-audit --no-fund --prefix "$prefix" $FLOE_NPM_SERVERS >&2 ||
    echo "bootstrap: could not install $FLOE_NPM_SERVERS; their tests will not run" >&2
}
ensure_npm_servers

if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -x .venv/bin/dagster ]; then
  exit 0
fi

if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  echo "bootstrap: installing uv $UV_VERSION" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" 2>&1 | grep -v "WARNING: Running pip as the 'root' user" >&2 || true
fi
[ -x .venv/bin/python ] || "$PYTHON" -m uv venv --quiet .venv --python "$PYTHON"
echo "bootstrap: installing floe-dagster and its dependencies into .venv (1-3 minutes the first time)" >&2
# Bytecode is compiled at install time: these machines set PYTHONDONTWRITEBYTECODE, and every
# dbt / dagster start would otherwise recompile (about 10 s instead of 4-5 s).
"$PYTHON" -m uv pip install --quiet --python .venv/bin/python --compile-bytecode -e '.[dev]'
touch "$stamp"
