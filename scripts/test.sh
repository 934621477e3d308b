#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: system services, venv, linters, tests.
# Idempotent: reruns skip what is already installed or running.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- Debian packages, in one apt step, each only when missing:
#   Prometheus + Alertmanager (promtool/amtool and the e2e tests); Chromium + ChromeDriver for
#   browser tests (a test tool's own browser download cannot work here, Debian's build can);
#   python3-venv where python3 lacks venv/ensurepip (Debian's own python3 ships without it)
apt_packages=()
command -v promtool >/dev/null || apt_packages+=(prometheus)
command -v prometheus-alertmanager >/dev/null || apt_packages+=(prometheus-alertmanager)
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
  step "installing ${apt_packages[*]} (Debian)"
  apt-get update -qq
  # keep the packages' init scripts from starting daemons: the tests start their own
  [ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${apt_packages[@]}" >/dev/null
fi

# --- PostgreSQL on 127.0.0.1:5432 (the machine provides it; start or install it if not)
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  step "starting PostgreSQL"
  if [ ! -d /etc/postgresql ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test"

# --- Python environment: exactly what uv.lock pins (docs/decisions/0006-lockfile.md)
UV_VERSION=0.13.9
UV=.tools/uv/bin/uv
# uv lives in a venv of its own: `uv sync` removes from .venv whatever the lock does not list
if [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  step "installing uv $UV_VERSION into .tools/uv"
  python3 -m venv --clear .tools/uv
  .tools/uv/bin/python -m pip install -q "uv==$UV_VERSION"
fi
# uv must never fetch a Python build of its own (it cannot here): it uses .venv's python3
export UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy
[ -x .venv/bin/python ] || python3 -m venv .venv
step "checking that uv.lock matches pyproject.toml"
if ! "$UV" lock --check; then
  # CI tests only what is committed; on a workstation, re-lock for the edit in progress
  if [ -n "${CI:-}" ]; then
    echo "uv.lock is out of date with pyproject.toml: run '$UV lock' and commit uv.lock" >&2
    exit 1
  fi
  step "updating uv.lock for the edited pyproject.toml (commit both together)"
  "$UV" lock
fi
step "installing the package and the locked dev group (tests + linters) into .venv"
UV_PROJECT_ENVIRONMENT=.venv "$UV" sync --frozen --group dev

# --- static checks
step "ruff";          .venv/bin/ruff check . && .venv/bin/ruff format --check .
step "mypy (strict)"; .venv/bin/mypy
step "import-linter"; .venv/bin/lint-imports

# --- tests
step "pytest"
.venv/bin/python -m pytest -m "not chaos" "$@"

# --- the chaos suite restarts the shared PostgreSQL, so it runs alone, serially, last
# (tests/hardening/test_chaos.py; figures in docs/operations.md, "Chaos suite")
step "pytest: chaos suite"
# chaos tests live in tests/hardening: collecting only there saves ~15 s of a full collection
[ $# -gt 0 ] || set -- tests/hardening
rc=0
.venv/bin/python -m pytest -m chaos "$@" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || exit "$rc"  # 5: the arguments selected no chaos test
