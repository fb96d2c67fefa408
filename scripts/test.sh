#!/usr/bin/env bash
# Installs everything the test suite needs into .venv and runs it.
# Default: embedded SQLite + in-process worker. ALERTS_TEST_SERVERS=1: real PostgreSQL/Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# Browser tests drive Debian's Chromium (never a downloaded browser build).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: apt-get install chromium (browser tests will fail)" >&2
  fi
fi
exec .venv/bin/python -m pytest "$@"
