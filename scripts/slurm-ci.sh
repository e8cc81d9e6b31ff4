#!/usr/bin/env bash
# Start/stop a real single-node Slurm cluster (munged + slurmctld + slurmd on
# 127.0.0.1) for the tests of internal/executor/slurm. Facts, timings and the
# reasons behind each step: ../shared/docs/slurm-local.md.
#
# Usage: SLURM_CI_DIR=/tmp/slurm-ci scripts/slurm-ci.sh start|stop|status|test
#   start   install the Debian packages when missing (root only), write
#           $SLURM_CI_DIR/slurm.conf, start the daemons and wait until the node is idle
#   stop    cancel the cluster's jobs, stop the daemons this script started (by
#           the PIDs it recorded, SIGKILL after 5 s); nothing else is touched
#   status  print whether the cluster answers
#   test    start, run a smoke test (array job, failing job, srun), stop
# Clients and `go test` then need: export SLURM_CONF=$SLURM_CI_DIR/slurm.conf
#
# Environment:
#   SLURM_CI_DIR        scratch folder (required); its state/ and spool/ are wiped on start
#   SLURM_CI_PROCTRACK  default proctrack/linuxproc (proctrack/cgroup also works here)
#   SLURM_CI_TASK       default task/none (task/cgroup also works here)
#   SLURM_CI_CTLD_PORT  slurmctld port (default 6817); slurmd uses the next port
#   SLURM_CI_MAX_ARRAY_SIZE  MaxArraySize of the cluster (default: Slurm's, 1001); a small
#                       value (e.g. 4) lets the tests split a stage into several arrays
#   SLURM_CI_TIMEOUT    seconds to wait for the node to become idle (default 30)
set -euo pipefail
D=${SLURM_CI_DIR:?set SLURM_CI_DIR to a scratch folder, e.g. SLURM_CI_DIR=/tmp/slurm-ci}
case "$D" in /*) ;; *) D=$PWD/$D ;; esac
export SLURM_CONF=$D/slurm.conf
PKGS="slurmctld slurmd slurm-client munge"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
die() { echo "slurm-ci: $*" >&2; exit 1; }

# pkg_install installs the Debian packages when a daemon or client is missing.
# (Not named `install`: that would shadow coreutils install -d below.)
pkg_install() {
  local c missing=0
  for c in slurmctld slurmd sbatch munged; do command -v $c >/dev/null || missing=1; done
  [ $missing = 0 ] && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
    die "Slurm is not installed and this is not root with apt-get; install it with: sudo apt-get install -y --no-install-recommends $PKGS"
  local t; t=$(date +%s%N)
  mkdir -p "$D"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $PKGS >"$D/apt.log" 2>&1 || {
    apt-get update >>"$D/apt.log" 2>&1
    apt-get install -y --no-install-recommends $PKGS >>"$D/apt.log" 2>&1 ||
      { tail -n 20 "$D/apt.log" >&2; die "apt-get install $PKGS failed; full log in $D/apt.log"; }
  }
  echo "slurm-ci: install: $(ms "$t") ms"
}

# alive PID succeeds while the process runs. A zombie counts as gone: the
# daemons are reparented to PID 1 when this script exits, and PID 1 here
# reaps them only seconds later.
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# running PIDFILE succeeds when the process recorded in PIDFILE is alive.
running() { [ -s "$1" ] && alive "$(cat "$1")"; }

write_conf() {
  local hw port=${SLURM_CI_CTLD_PORT:-6817}
  # real topology + memory of this machine, e.g. "CPUs=2 Boards=1 SocketsPerBoard=1
  # CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  hw=$(slurmd -C | head -n1 | sed 's/^NodeName=[^ ]* //; s/ UpTime=.*//')
  cat >"$SLURM_CONF" <<CONF
# Written by scripts/slurm-ci.sh: single-node test cluster on 127.0.0.1.
ClusterName=ci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=${SLURM_CI_PROCTRACK:-proctrack/linuxproc}
TaskPlugin=${SLURM_CI_TASK:-task/none}
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
MinJobAge=300
${SLURM_CI_MAX_ARRAY_SIZE:+MaxArraySize=$SLURM_CI_MAX_ARRAY_SIZE}
NodeName=localhost NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  # cgroup.conf is only read when a cgroup plugin is configured
  printf 'CgroupPlugin=autodetect\nConstrainCores=no\nConstrainRAMSpace=no\n' >"$D/cgroup.conf"
}

start_munge() {
  # the key is created by the munge package's postinst; create it if missing
  [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null; chown munge:munge /etc/munge/munge.key; }
  # no systemd/tmpfiles here: munged refuses to start without /run/munge
  install -d -o munge -g munge -m 755 /run/munge
  munge -n >/dev/null 2>&1 && return 0 # a munged is already running: use it, never stop it
  runuser -u munge -- /usr/sbin/munged -F >"$D/log/munged.out" 2>&1 &
  echo $! >"$D/runuser.fg.pid"
  local _
  for _ in $(seq 100); do
    if munge -n >/dev/null 2>&1; then
      # stop munged itself: runuser takes ~2 s to pass SIGTERM on
      cp /run/munge/munged.pid "$D/munged.fg.pid"
      return 0
    fi
    sleep 0.1
  done
  cat "$D/log/munged.out" >&2
  die "munged did not start (log above)"
}

start() {
  [ "$(id -u)" = 0 ] || die "start needs root (the daemons run as root; jobs run as root)"
  pkg_install
  if running "$D/slurmctld.fg.pid" || running "$D/slurmd.fg.pid"; then
    die "a cluster started from $D is still running; run: SLURM_CI_DIR=$D $0 stop"
  fi
  local t; t=$(date +%s%N)
  # fresh state: no jobs of an earlier run are recovered, job ids start at 1
  rm -rf "$D/state" "$D/spool"
  mkdir -p "$D/state" "$D/spool" "$D/log"
  write_conf
  start_munge
  slurmctld -D -i >"$D/log/slurmctld.out" 2>&1 &
  echo $! >"$D/slurmctld.fg.pid"
  slurmd -D -N localhost >"$D/log/slurmd.out" 2>&1 &
  echo $! >"$D/slurmd.fg.pid"
  # Deadline, not an iteration count: each sinfo can block for seconds while munge is broken.
  local deadline=$((SECONDS + ${SLURM_CI_TIMEOUT:-30}))
  while [ $SECONDS -lt $deadline ]; do
    if [ "$(timeout 5 sinfo -h -N -o %T 2>/dev/null)" = idle ]; then
      echo "slurm-ci: start: $(ms "$t") ms; export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    running "$D/slurmctld.fg.pid" || break
    running "$D/slurmd.fg.pid" || break
    sleep 0.2
  done
  tail -n 20 "$D"/log/*.out "$D"/log/*.log >&2 || true
  stop >&2
  die "slurm did not come up within ${SLURM_CI_TIMEOUT:-30} s (logs above, in $D/log)"
}

stop() {
  local t p f pids=()
  t=$(date +%s%N)
  # Cancel this cluster's jobs first so that no slurmstepd or task outlives slurmd.
  if running "$D/slurmctld.fg.pid"; then
    timeout 5 scancel --quiet --partition=debug 2>/dev/null || true
    local deadline=$((SECONDS + 5))
    while [ $SECONDS -lt $deadline ] && [ -n "$(timeout 5 squeue -h -o %i 2>/dev/null)" ]; do sleep 0.2; done
  fi
  for f in "$D/slurmd.fg.pid" "$D/slurmctld.fg.pid" "$D/munged.fg.pid"; do
    if running "$f"; then p=$(cat "$f"); kill -TERM "$p"; pids+=("$p"); fi
  done
  # runuser (munged's parent) exits with munged; it is not signalled because on
  # SIGTERM it waits 2 s before killing its child.
  if running "$D/runuser.fg.pid"; then pids+=("$(cat "$D/runuser.fg.pid")"); fi
  for p in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 100); do alive "$p" || break; sleep 0.05; done
    if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi # slurmd ignores TERM when munge is broken
  done
  rm -f "$D"/*.fg.pid
  # the cgroup plugins leave an empty freezer group behind
  for c in /sys/fs/cgroup/*/slurm_localhost /sys/fs/cgroup/slurm_localhost; do
    if [ -d "$c" ]; then find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  echo "slurm-ci: stop: $(ms "$t") ms (stopped ${#pids[@]} processes)"
}

status() {
  if timeout 5 sinfo -h -N -o '%N %T' 2>/dev/null; then return 0; fi
  echo "slurm-ci: no cluster answers at $SLURM_CONF" >&2
  return 1
}

smoke() {
  local t jid out=$D/smoke rc
  t=$(date +%s%N)
  rm -rf "$out"
  mkdir -p "$out"
  cat >"$out/array.sh" <<'JOB'
#!/bin/bash
echo "task=$SLURM_ARRAY_TASK_ID job=$SLURM_ARRAY_JOB_ID" >"$OUT_DIR/result_${SLURM_ARRAY_TASK_ID}.txt"
JOB
  jid=$(OUT_DIR=$out sbatch --parsable --export=ALL --array=0-3 -o "$out/slurm_%A_%a.log" "$out/array.sh")
  local deadline=$((SECONDS + 60))
  while squeue -h --jobs="$jid" 2>/dev/null | grep -q .; do
    [ $SECONDS -lt $deadline ] || { squeue >&2; die "array job $jid did not finish within 60 s"; }
    sleep 0.1
  done
  echo "slurm-ci: array 0-3 submit->done: $(ms "$t") ms"
  scontrol show job "$jid" | grep -o 'JobState=[A-Z]*\|ExitCode=[0-9:]*' | paste - - | sort | uniq -c
  [ "$(find "$out" -name 'result_*.txt' | wc -l)" = 4 ] || die "array job $jid: expected 4 result files in $out"
  t=$(date +%s%N)
  sbatch --wait -o /dev/null --wrap 'exit 3' && rc=0 || rc=$?
  echo "slurm-ci: sbatch --wait failing job rc=$rc ($(ms "$t") ms)"
  [ "$rc" = 3 ] || die "sbatch --wait: expected rc=3, got $rc"
  t=$(date +%s%N)
  srun -n2 bash -c 'echo srun rank=$SLURM_PROCID' | sort
  echo "slurm-ci: srun: $(ms "$t") ms"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  test)
    trap stop EXIT
    start
    smoke
    ;;
  *)
    echo "usage: SLURM_CI_DIR=DIR $0 start|stop|status|test" >&2
    exit 2
    ;;
esac
