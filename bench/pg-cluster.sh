# Sourced by the benchmarks that put the ledger in PostgreSQL (after `say` is defined): a
# throwaway PostgreSQL 15 cluster, made and started by `pg_start`, stopped and deleted by
# `pg_stop` (register it with the caller's exit trap).
#
# The cluster: initdb into a temporary directory of its own (as `nobody` when run as root:
# initdb refuses root), listening on 127.0.0.1 only, on a free port, no Unix socket; trust
# authentication for 127.0.0.1 and nothing else; fsync, synchronous_commit, shared_buffers and
# the WAL settings left at their defaults (fsync on, synchronous_commit on: a commit returns
# once its WAL is flushed to disk, as SQLite's claims are). The data directory is on the same
# file system as the caller's TMPDIR, so both ledgers pay the same disk.
#
# Knobs: PG_BIN=/usr/lib/postgresql/15/bin; PG_OPTS, more server settings for a diagnosis
# (`-c synchronous_commit=off`, `-c log_min_duration_statement=0`): not for the figures.
# Sets PG_DIR, PG_DATA, PG_PORT.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=

# pg_as CMD ARGS...: CMD as the cluster's owner (nobody when we are root).
pg_as() {
    if [[ $(id -u) == 0 ]]; then runuser -u nobody -- "$@"; else "$@"; fi
}

pg_start() {
    [[ -x $PG_BIN/initdb ]] || { say "PostgreSQL 15 missing ($PG_BIN/initdb): apt-get install postgresql-15"; exit 1; }
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/outreach-pg-bench.XXXXXX")
    PG_DATA=$PG_DIR/data
    [[ $(id -u) == 0 ]] && chown nobody: "$PG_DIR"
    say "initdb: PostgreSQL 15 cluster in $PG_DIR"
    pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C --auth=reject --no-sync >"$PG_DIR/initdb.log" \
        || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
    pg_as sh -c "echo 'host all all 127.0.0.1/32 trust' >'$PG_DATA/pg_hba.conf'"
    local attempt
    for attempt in 1 2 3; do   # another process may take the free port before the server binds it
        PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/log" -w -s \
            -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories='' ${PG_OPTS:-}" start; then
            break
        fi
        [[ $attempt == 3 ]] && { cat "$PG_DIR/log" >&2; exit 1; }
    done
    say "PostgreSQL on 127.0.0.1:$PG_PORT (fsync=$(pg_sql -c 'SHOW fsync'), synchronous_commit=$(pg_sql -c 'SHOW synchronous_commit'), shared_buffers=$(pg_sql -c 'SHOW shared_buffers'))"
    pg_sql -c "CREATE ROLE outreach LOGIN" >/dev/null
}

# pg_sql PSQL_ARGS...: psql as the superuser, unaligned, tuples only, stopping at the first error.
pg_sql() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "${PG_DB:-postgres}" "$@"
}

# pg_url DB: the state_url of database DB (owned by the role `outreach`).
pg_url() { echo "postgres://outreach@127.0.0.1:$PG_PORT/$1"; }

# pg_cpu: the CPU seconds (user + system) the server has used so far: the postmaster's own and
# those of the children it has reaped (backends that ended: their time is added to its cutime
# and cstime), plus the live children's (checkpointer, WAL writer, backends still running).
pg_cpu() {
    local pm
    pm=$(head -1 "$PG_DATA/postmaster.pid")
    python3 - "$pm" <<'EOF'
import os, sys
pm = sys.argv[1]
tick = os.sysconf("SC_CLK_TCK")
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
f = fields(pm)
total = sum(int(x) for x in f[11:15])   # utime stime cutime cstime
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid == pm:
        continue
    try:
        c = fields(pid)
    except OSError:
        continue
    if c[1] == pm:                      # ppid
        total += int(c[11]) + int(c[12])
print(f"{total / tick:.2f}")
EOF
}

pg_stop() {
    [[ -n $PG_DIR ]] || return 0
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -s stop >/dev/null 2>&1 || true
    [[ ${BENCH_KEEP:-0} == 1 ]] && { say "kept the cluster's directory $PG_DIR"; return 0; }
    rm -rf "$PG_DIR"
    PG_DIR=
}
