#!/usr/bin/env bash
# Start Debian's PostgreSQL on 127.0.0.1 and print a SQLAlchemy URL for the tests.
# Needs root and the `postgresql` package; idempotent.
set -euo pipefail
cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_createcluster "$version" main >/dev/null
  cluster="$version main"
fi
# shellcheck disable=SC2086
pg_ctlcluster $cluster start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -q && break
  sleep 1
done
su postgres -c "psql -q -h 127.0.0.1 -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='conveyor') THEN CREATE ROLE conveyor LOGIN PASSWORD 'conveyor' SUPERUSER; END IF; END \\\$\\\$;\"" >/dev/null 2>&1 \
  || su postgres -c "psql -q -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='conveyor') THEN CREATE ROLE conveyor LOGIN PASSWORD 'conveyor' SUPERUSER; END IF; END \\\$\\\$;\"" >/dev/null
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='conveyor_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O conveyor conveyor_test"
echo "postgresql+psycopg://conveyor:conveyor@127.0.0.1:5432/conveyor_test"
