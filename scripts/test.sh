#!/usr/bin/env bash
# `make test`: the whole suite on SQLite (browser tests included), then the
# portal, tenants and browser tests again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
bash scripts/system-deps.sh

echo "== lint (ruff: undefined names, unused imports) =="
$PY -m ruff check .

echo "== the whole suite, SQLite =="
$PY -m pytest -n 2 -q "$@"

if [ "${DUALKEY_SKIP_POSTGRES:-0}" = 1 ]; then
  echo "PostgreSQL run skipped (DUALKEY_SKIP_POSTGRES=1)"
  exit 0
fi
echo "== portal, tenants, accounts and the browser tests, PostgreSQL =="
DATABASE_URL=$(bash scripts/postgres.sh)
case "$DATABASE_URL" in
  postgres://*) ;;
  *) echo "scripts/postgres.sh did not give a postgres:// URL: $DATABASE_URL" >&2; exit 1 ;;
esac
export DATABASE_URL
$PY -m pytest -n 2 -q tests/portal tests/tenants tests/accounts tests/e2e tests/test_no_report_content_at_vendor.py
