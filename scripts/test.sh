#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: system services, venv, linters, tests.
# Idempotent: reruns skip what is already installed or running.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- Debian packages: Prometheus + Alertmanager (for promtool/amtool and the e2e tests)
if ! command -v promtool >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
  step "installing prometheus and prometheus-alertmanager (Debian)"
  apt-get update -qq
  # keep the packages' init scripts from starting daemons: the tests start their own
  [ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager >/dev/null
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

# --- Python environment
step "installing the package and its test dependencies into .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -U pip
.venv/bin/python -m pip install -q -e . --group test

# --- static checks
step "ruff";          .venv/bin/ruff check . && .venv/bin/ruff format --check .
step "mypy (strict)"; .venv/bin/mypy
step "import-linter"; .venv/bin/lint-imports

# --- tests
step "pytest"
.venv/bin/python -m pytest "$@"
