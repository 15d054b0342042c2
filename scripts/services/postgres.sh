# shellcheck shell=bash
# Sourced by scripts/test.sh before pytest: start a throwaway PostgreSQL server for the tests
# marked `postgres` and export WATTBIT_TEST_POSTGRES_URL. The server lives in a fresh directory
# under /tmp, listens on 127.0.0.1 on a free port only, and is stopped (and its directory
# removed) by a watcher when the test process (this shell, after its exec into pytest) exits.
# Already set WATTBIT_TEST_POSTGRES_URL: used as is. No PostgreSQL installed: the tests skip.

_wattbit_start_postgres() {
  if [ -n "${WATTBIT_TEST_POSTGRES_URL:-}" ]; then
    echo "postgres: using WATTBIT_TEST_POSTGRES_URL from the environment"
    return 0
  fi
  local bin
  bin=$(command -v pg_ctl 2>/dev/null || true)
  if [ -z "$bin" ]; then
    # Debian keeps the server programs out of PATH
    bin=$(compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" | sort -V | tail -n 1 || true)
  fi
  if [ -z "$bin" ]; then
    echo "postgres: PostgreSQL server not installed; tests marked 'postgres' will skip" \
         "(install it: scripts/ci-system-packages.sh)"
    return 0
  fi
  local bindir dir port owner run
  bindir=$(dirname "$(readlink -f "$bin")")
  dir=$(mktemp -d /tmp/wattbit-pg-XXXXXX)
  chmod 755 "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  run=()
  owner=$(id -un)
  if [ "$(id -u)" -eq 0 ]; then
    # the server refuses to run as root
    owner=postgres
    id postgres > /dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    run=(runuser -u postgres --)
  fi
  if ! "${run[@]}" "$bindir/initdb" -D "$dir/data" -U wattbit -A trust --no-sync -E UTF8 \
       > "$dir/initdb.log" 2>&1; then
    echo "postgres: initdb failed:" >&2; tail -n 20 "$dir/initdb.log" >&2
    return 1
  fi
  if ! "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
       -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
       start > /dev/null; then
    echo "postgres: server did not start:" >&2; tail -n 20 "$dir/server.log" >&2
    return 1
  fi
  "${run[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U wattbit wattbit_test
  # stop the server when this process (pytest, after exec) is gone
  local watched=$$
  ( while kill -0 "$watched" 2> /dev/null; do sleep 1; done
    "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop
    rm -rf "$dir" ) > /dev/null 2>&1 < /dev/null &
  export WATTBIT_TEST_POSTGRES_URL="postgresql+psycopg://wattbit@127.0.0.1:$port/wattbit_test"
  echo "postgres: server (owner $owner) on 127.0.0.1:$port, data in $dir"
}

_wattbit_start_postgres
unset -f _wattbit_start_postgres
