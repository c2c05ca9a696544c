#!/usr/bin/env bash
# Starts the machine's PostgreSQL cluster (Debian's packaging) and makes sure the
# test role exists; prints the DATABASE_URL to use. The role needs CREATEDB: the
# test runner creates one test database per worker.
set -euo pipefail
# Only the URL goes to stdout: pg_ctlcluster prints notices there ("Removed stale
# pid file."), which once ended up in front of the URL. (Not `exec 1>&2` with the
# URL on a saved descriptor: the server would inherit it and hold $(...) open.)
version=$(ls /etc/postgresql | sort -V | tail -1)
pg_ctlcluster "$version" main status >/dev/null 2>&1 || pg_ctlcluster "$version" main start >&2
port=$(pg_conftool -s "$version" main show port 2>/dev/null || echo 5432)
su postgres -c "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname='dualkey'\" | grep -q 1 || \
  psql -q -p $port -c \"CREATE ROLE dualkey LOGIN PASSWORD 'dualkey' CREATEDB\"" >/dev/null
su postgres -c "psql -q -p $port -lqt | cut -d'|' -f1 | grep -qw dualkey || createdb -p $port -O dualkey dualkey" >&2
echo "postgres://dualkey:dualkey@127.0.0.1:$port/dualkey"
