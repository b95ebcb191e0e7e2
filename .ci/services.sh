#!/usr/bin/env bash
# PgBouncer (transaction pooling) on 6432 and a streaming replica on 5433, both in front of / behind
# the PostgreSQL 15 "main" cluster on 5432. Idempotent: what already runs and works is left alone,
# what is missing or broken is (re)made. Sourced by .ci/run; on its own: `bash .ci/services.sh`.
# Needs root (apt-get, pg_createcluster, su postgres), as .ci/run does.
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PRIMARY_PORT="${PRIMARY_PORT:-5432}"
PGBOUNCER_PORT="${PGBOUNCER_PORT:-6432}"
REPLICA_PORT="${REPLICA_PORT:-5433}"
PGBOUNCER_DIR="${PGBOUNCER_DIR:-/var/lib/postgresql/pgbouncer}"
REPLICA_CLUSTER="${REPLICA_CLUSTER:-replica}"
SLOT="${REPLICA_SLOT:-ci_replica}"

_psql() { psql -h 127.0.0.1 -U postgres -X -Atq "$@"; }

pgbouncer_up() {
  if ! command -v pgbouncer >/dev/null 2>&1; then
    echo "--- installing PgBouncer (Debian)"
    apt-get install -y -qq pgbouncer >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null; }
    # Where the package's own service started (systemd), it would hold the port with its default configuration.
    service pgbouncer stop >/dev/null 2>&1 || true
  fi
  mkdir -p "$PGBOUNCER_DIR"
  local ini="$PGBOUNCER_DIR/pgbouncer.ini" wanted
  wanted="$(cat <<EOF
; Written by .ci/services.sh: transaction pooling in front of PostgreSQL on $PRIMARY_PORT.
[databases]
* = host=127.0.0.1 port=$PRIMARY_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
auth_type = trust
auth_file = $PGBOUNCER_DIR/userlist.txt
admin_users = postgres
stats_users = postgres
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
server_reset_query =
ignore_startup_parameters = extra_float_digits
pidfile = $PGBOUNCER_DIR/pgbouncer.pid
logfile = $PGBOUNCER_DIR/pgbouncer.log
unix_socket_dir =
EOF
)"
  echo '"postgres" ""' >"$PGBOUNCER_DIR/userlist.txt"
  local changed=0
  if [ ! -f "$ini" ] || [ "$(cat "$ini")" != "$wanted" ]; then
    printf '%s\n' "$wanted" >"$ini"
    changed=1
  fi
  chown -R postgres:postgres "$PGBOUNCER_DIR"
  local pid=""
  [ -f "$PGBOUNCER_DIR/pgbouncer.pid" ] && pid="$(cat "$PGBOUNCER_DIR/pgbouncer.pid")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    if [ "$changed" = 1 ]; then
      echo "--- PgBouncer: configuration changed, restarting"
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    elif _psql -p "$PGBOUNCER_PORT" -d postgres -c "select 1" >/dev/null 2>&1; then
      echo "--- PgBouncer already on $PGBOUNCER_PORT"
      return
    else
      kill "$pid" 2>/dev/null || true
      sleep 1
    fi
  fi
  echo "--- starting PgBouncer on $PGBOUNCER_PORT (transaction pooling)"
  rm -f "$PGBOUNCER_DIR/pgbouncer.pid"
  su postgres -s /bin/sh -c "pgbouncer -d '$ini'"
  for _ in $(seq 1 50); do
    _psql -p "$PGBOUNCER_PORT" -d postgres -c "select 1" >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "PgBouncer did not answer on $PGBOUNCER_PORT:" >&2
  tail -20 "$PGBOUNCER_DIR/pgbouncer.log" >&2
  return 1
}

_replica_streaming() {
  [ "$(_psql -p "$REPLICA_PORT" -d postgres -c "select pg_is_in_recovery()" 2>/dev/null)" = "t" ] || return 1
  # Replay may have been left paused by an interrupted test: resume it.
  _psql -p "$REPLICA_PORT" -d postgres -c "select pg_wal_replay_resume()" >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do
    [ "$(_psql -p "$PRIMARY_PORT" -d postgres -c "select count(*) from pg_stat_replication where state = 'streaming'")" -ge 1 ] && return 0
    sleep 1
  done
  return 1
}

replica_up() {
  local hba="/etc/postgresql/$PG_VERSION/main/pg_hba.conf"
  local data="/var/lib/postgresql/$PG_VERSION/$REPLICA_CLUSTER"
  if ! grep -q "^host replication all 127.0.0.1/32 trust" "$hba"; then
    echo "host replication all 127.0.0.1/32 trust" >>"$hba"
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main reload
  fi
  if pg_lsclusters -h | awk '{print $2}' | grep -qx "$REPLICA_CLUSTER"; then
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$REPLICA_CLUSTER" start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p "$REPLICA_PORT" -q && break; sleep 1; done
    if _replica_streaming; then
      echo "--- replica already streaming on $REPLICA_PORT"
      return
    fi
    echo "--- replica on $REPLICA_PORT is not streaming: making it again"
    pg_dropcluster --stop "$PG_VERSION" "$REPLICA_CLUSTER"
  fi
  # The slot keeps the WAL the replica has not received yet (the base backup of a busy primary takes
  # minutes); dropped with the replica, so that a stopped replica never holds WAL for long.
  _psql -p "$PRIMARY_PORT" -d postgres -c \
    "select pg_drop_replication_slot('$SLOT') from pg_replication_slots where slot_name = '$SLOT'" >/dev/null
  echo "--- making a streaming replica on $REPLICA_PORT (pg_basebackup -R)"
  pg_createcluster "$PG_VERSION" "$REPLICA_CLUSTER" --port "$REPLICA_PORT" >/dev/null
  rm -rf "${data:?}"/*
  su postgres -s /bin/sh -c "pg_basebackup -h 127.0.0.1 -p $PRIMARY_PORT -U postgres -D '$data' -R -X stream -C -S $SLOT"
  cp "$hba" "/etc/postgresql/$PG_VERSION/$REPLICA_CLUSTER/pg_hba.conf"
  # Enough standby connections for the tests' servers and pools; a standby needs at least the primary's.
  local max
  max="$(_psql -p "$PRIMARY_PORT" -d postgres -c "show max_connections")"
  sed -i "s/^#\?max_connections = .*/max_connections = $max/" "/etc/postgresql/$PG_VERSION/$REPLICA_CLUSTER/postgresql.conf"
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$REPLICA_CLUSTER" start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p "$REPLICA_PORT" -q && break; sleep 1; done
  _replica_streaming || { echo "the replica on $REPLICA_PORT does not stream" >&2; return 1; }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  pgbouncer_up
  replica_up
fi
