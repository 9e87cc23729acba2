#!/usr/bin/env bash
# Make sure a PostgreSQL server for the tests answers, and print its DSN for the caller to eval:
#
#     eval "$(scripts/ensure-postgres.sh)"      # exports GONOGO_TEST_PG_DSN
#     scripts/ensure-postgres.sh --stop         # stop the throwaway cluster, if one was started
#
# 1. If a server answers at ${GONOGO_TEST_PG_DSN:-postgresql://postgres@127.0.0.1:5432/test}, use it.
# 2. Else run a throwaway cluster in $GONOGO_PG_DIR (default /tmp/gonogo-pg) on 127.0.0.1:$GONOGO_PG_PORT
#    (default 54329) with trust auth and a database `test`, installing Debian's `postgresql` first
#    if no initdb is found. PostgreSQL refuses to run as root, so as root the cluster runs as the
#    `postgres` user (runuser). Re-running reuses the running cluster.
#
# Only the `export ...` line goes to stdout; everything else goes to stderr.
set -euo pipefail

DEFAULT_DSN="postgresql://postgres@127.0.0.1:5432/test"
DSN="${GONOGO_TEST_PG_DSN:-$DEFAULT_DSN}"
PG_DIR="${GONOGO_PG_DIR:-/tmp/gonogo-pg}"
PG_PORT="${GONOGO_PG_PORT:-54329}"
DATA="$PG_DIR/data"
SOCKETS="$PG_DIR/run"
LOGFILE="$PG_DIR/postgres.log"
OWN_DSN="postgresql://postgres@127.0.0.1:$PG_PORT/test"

log() { echo "ensure-postgres: $*" >&2; }
die() {
    log "$*"
    exit 1
}

BINDIR=""
find_bindir() {
    local candidate
    if command -v initdb >/dev/null 2>&1; then
        BINDIR="$(dirname "$(readlink -f "$(command -v initdb)")")"
        return 0
    fi
    # Debian keeps the server binaries off PATH, one directory per major version: take the newest.
    candidate="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
        BINDIR="$candidate"
        return 0
    fi
    return 1
}

psql_bin() {
    if [ -n "$BINDIR" ] && [ -x "$BINDIR/psql" ]; then
        echo "$BINDIR/psql"
    elif command -v psql >/dev/null 2>&1; then
        command -v psql
    else
        return 1
    fi
}

# True when `select 1` works at the DSN (the server is up, the database exists, we may log in).
answers() {
    local psql
    psql="$(psql_bin)" || return 1
    PGCONNECT_TIMEOUT=3 "$psql" "$1" -XAtqc 'select 1' >/dev/null 2>&1
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stop_cluster() {
    find_bindir || die "no PostgreSQL binaries found"
    if [ -f "$DATA/postmaster.pid" ]; then
        as_postgres "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2
    else
        log "no cluster running in $DATA"
    fi
}

if [ "${1:-}" = "--stop" ]; then
    stop_cluster
    exit 0
fi

find_bindir || true
if answers "$DSN"; then
    log "using the server at ${DSN%%\?*}"
    printf 'export GONOGO_TEST_PG_DSN=%q\n' "$DSN"
    exit 0
fi
if [ -n "${GONOGO_TEST_PG_DSN:-}" ] && [ "$GONOGO_TEST_PG_DSN" != "$OWN_DSN" ]; then
    log "GONOGO_TEST_PG_DSN does not answer; starting a throwaway cluster instead"
fi
if answers "$OWN_DSN"; then
    log "reusing the throwaway cluster at $OWN_DSN"
    printf 'export GONOGO_TEST_PG_DSN=%q\n' "$OWN_DSN"
    exit 0
fi

if ! find_bindir; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; run as root (or: sudo apt-get install -y postgresql)"
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    find_bindir || die "postgresql installed, but no initdb found under /usr/lib/postgresql/*/bin"
fi
log "server binaries: $BINDIR"

if [ "$(id -u)" = 0 ]; then
    id -u postgres >/dev/null 2>&1 || useradd --system --home-dir "$PG_DIR" --shell /usr/sbin/nologin postgres
    command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) is needed to run PostgreSQL as the postgres user"
fi

mkdir -p "$PG_DIR" "$SOCKETS"
if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$PG_DIR"
fi
chmod 700 "$PG_DIR"

if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb $DATA"
    as_postgres "$BINDIR/initdb" -D "$DATA" --auth=trust --username=postgres --encoding=UTF8 --no-locale >&2
fi

if ! as_postgres "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $LOGFILE)"
    as_postgres "$BINDIR/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 \
        -o "-p $PG_PORT -k $SOCKETS -c listen_addresses=127.0.0.1" start >&2 ||
        {
            tail -n 20 "$LOGFILE" >&2 || true
            die "PostgreSQL did not start"
        }
fi

PSQL="$(psql_bin)" || die "psql not found (install postgresql-client)"
ADMIN="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
if [ "$("$PSQL" "$ADMIN" -XAtqc "select 1 from pg_database where datname = 'test'")" != "1" ]; then
    "$PSQL" "$ADMIN" -Xqc "create database test" >&2
fi
answers "$OWN_DSN" || die "the throwaway cluster does not answer at $OWN_DSN"
log "throwaway cluster ready at $OWN_DSN"
printf 'export GONOGO_TEST_PG_DSN=%q\n' "$OWN_DSN"
