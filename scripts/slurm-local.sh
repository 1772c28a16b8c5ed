#!/usr/bin/env bash
# A real single-node Slurm cluster (munged, MariaDB, slurmdbd, slurmctld, slurmd) for the
# end-to-end tests: Debian, root, no systemd needed.
#   scripts/slurm-local.sh start   install if needed, configure, start; idempotent
#   scripts/slurm-local.sh stop    stop the daemons this script started
#   scripts/slurm-local.sh status  print sinfo (exit 0) or "not running" (exit 1)
# start exits 0 when ready, 2 when Slurm cannot be had here (callers skip), 1 when it broke.
set -euo pipefail

BASE=/var/spool/slurm-local  # state, logs, pid files, "we started it" markers
ETC=/etc/slurm               # the default config dir: sbatch/sacct/squeue need no SLURM_CONF
HOST=$(hostname -s)          # slurmd finds its NodeName, slurmctld its SlurmctldHost, by this
# slurmdbd gives a plain `sacct` as on a real cluster; it needs MariaDB (~12 s more to install).
PKGS=(slurm-wlm munge slurmdbd mariadb-server)
DB=slurm_local_acct
TEMPLATES=$(cd "$(dirname "$0")" && pwd)/slurm
export PATH=$PATH:/usr/sbin:/sbin

say() { echo "slurm-local: $*"; }
unavailable() { say "unavailable: $*"; exit 2; }
fail() { say "failed: $*" >&2; tail -n 15 "$BASE"/log/*.log >&2 2>/dev/null || true; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# wait_for N CHECK...: retry CHECK every 0.5 s, at most N times.
wait_for() {
  local n=$1; shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}
munge_ok() { munge -n </dev/null | unmunge >/dev/null; }
# mysqld_safe stays in the foreground: detach it fully, so that callers' pipes close.
detach() { setsid "$@" </dev/null >/dev/null 2>&1 & }

# "name pid-file", in start order; stop goes backwards.
DAEMONS=("munged /run/munge/munged.pid" "mariadb /run/mysqld/mysqld.pid"
  "slurmdbd $BASE/slurmdbd.pid" "slurmctld $BASE/slurmctld.pid" "slurmd $BASE/slurmd.pid")

install_if_missing() {
  local c missing=""
  for c in sbatch sacct slurmctld slurmd slurmdbd munged mysqld_safe; do
    command -v "$c" >/dev/null || missing+=" $c"
  done
  [ -z "$missing" ] && return 0
  command -v apt-get >/dev/null || unavailable "no apt-get, and missing:$missing"
  # The image's policy-rc.d stops the packages from starting services; we start them below.
  # Recommends would add HDF5/InfluxDB/... plugins that the tests never use.
  export DEBIAN_FRONTEND=noninteractive
  timeout 180 apt-get -qq update >"$BASE/log/apt.log" 2>&1 ||
    unavailable "apt-get update failed (no network?)"
  timeout 420 apt-get -qq install -y --no-install-recommends "${PKGS[@]}" >>"$BASE/log/apt.log" 2>&1 ||
    unavailable "apt-get install ${PKGS[*]} failed (see $BASE/log/apt.log)"
}

# Fill in scripts/slurm/*.conf.in (CPUs from nproc, RealMemory 90% of MemTotal) into /etc/slurm.
write_config() {
  local f mem
  mem=$(awk '/^MemTotal/ { m = int($2 / 1024 * 0.9); print (m > 1 ? m : 1) }' /proc/meminfo)
  for f in slurm.conf slurmdbd.conf; do
    sed -e "s|@HOST@|$HOST|g; s|@BASE@|$BASE|g; s|@DB@|$DB|g" \
      -e "s|@CPUS@|$(nproc)|g; s|@MEM@|$mem|g" "$TEMPLATES/$f.in" >"$ETC/$f"
  done
  chmod 600 "$ETC/slurmdbd.conf"  # slurmdbd refuses a config that others can read
}

# launch NAME PIDFILE COMMAND...: start a daemon unless it runs, and remember that we did.
launch() {
  alive "$2" && return 0
  "${@:3}" || fail "could not start $1"
  touch "$BASE/started.$1"
}

start() {
  if [ "$(id -u)" != 0 ]; then  # someone else's running cluster will do; we cannot make one
    scontrol ping >/dev/null 2>&1 && { say "ready (already running)"; return 0; }
    unavailable "not root: cannot install or start Slurm"
  fi
  mkdir -p "$BASE"/{ctld,d,log} "$ETC" /run/munge /run/mysqld
  install_if_missing
  alive "$BASE/slurmctld.pid" || write_config  # a running cluster keeps the config it read
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key ||
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
  chown munge:munge /etc/munge/munge.key /run/munge && chmod 400 /etc/munge/munge.key
  touch "$BASE/log/mariadb.log" && chown mysql:mysql /run/mysqld "$BASE/log/mariadb.log"
  # munged will not run as root without --force: run it as its own user.
  munge_ok 2>/dev/null || launch munged /run/munge/munged.pid runuser -u munge -- munged
  wait_for 20 munge_ok || fail "munged does not answer"
  # No TCP port (slurmdbd uses the socket); slurmdbd warns about lock timeouts under 900 s.
  mysqladmin ping >/dev/null 2>&1 || launch mariadb /run/mysqld/mysqld.pid detach mysqld_safe \
    --skip-networking --skip-syslog --log-error="$BASE/log/mariadb.log" --innodb-lock-wait-timeout=900
  wait_for 60 mysqladmin ping || fail "MariaDB does not answer"
  # Job ids restart at 1 with a fresh StateSaveLocation: drop the old accounting with them, or
  # sacct would mix old and new jobs of the same id.
  alive "$BASE/slurmdbd.pid" || [ -e "$BASE/ctld/job_state" ] || mysql -e "DROP DATABASE IF EXISTS $DB"
  launch slurmdbd "$BASE/slurmdbd.pid" slurmdbd
  wait_for 40 sacctmgr -n list cluster || fail "slurmdbd does not answer"
  launch slurmctld "$BASE/slurmctld.pid" slurmctld  # registers cluster "local" with slurmdbd
  launch slurmd "$BASE/slurmd.pid" slurmd
  # A node can come back down or drained (e.g. after an unclean stop): resume it.
  local state=""
  for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
    case $state in
      idle | mixed | allocated)
        say "ready ($(sinfo -h -o %C | cut -d/ -f4) CPUs, partition debug)"; return 0 ;;
      down* | drain* | fail*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  fail "node $HOST is '${state:-unknown}' after 30 s"
}

stop() {
  local i name pidfile pid
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    read -r name pidfile <<<"${DAEMONS[i]}"
    [ -e "$BASE/started.$name" ] || continue
    rm -f "$BASE/started.$name"
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    # Daemons drop their pid file early in shutdown: wait for the process itself.
    if kill "$pid" 2>/dev/null; then
      wait_for 60 eval "! kill -0 $pid" || say "$name (pid $pid) did not stop"
    fi
  done
  say "stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) if scontrol ping >/dev/null 2>&1; then sinfo; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
