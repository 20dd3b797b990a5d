#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the test suite, and print the URL.
#   source .ci/postgres.sh   ->  exports SWEEPLAB_TEST_POSTGRES_URL, stops the server on exit
# Uses Debian's postgresql package (installed here if missing); the data lives in a temp dir.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== installing PostgreSQL (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
pg_bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/sweeplab-pg.XXXXXX")
# A free loopback port, so a server left over from an earlier run cannot get in the way.
pg_port=${SWEEPLAB_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
run_as_postgres() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
pg_password=sweeplab-ci-pw
printf '%s\n' "$pg_password" > "$pg_dir/pw"
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir/pw"
run_as_postgres "$pg_bin/initdb" -D "$pg_dir/data" -U sweeplab --pwfile="$pg_dir/pw" -A scram-sha-256 >/dev/null
run_as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c max_connections=200" start >/dev/null
PGPASSWORD=$pg_password "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U sweeplab sweeplab
export SWEEPLAB_TEST_POSTGRES_URL="postgresql+psycopg://sweeplab:${pg_password}@127.0.0.1:${pg_port}/sweeplab"
stop_postgres() { run_as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$pg_dir"; }
echo "== PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
