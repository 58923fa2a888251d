#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on this machine, for the end-to-end test.
#
#   tests/slurm/cluster.sh install   apt-get install slurm-wlm + munge when missing (root)
#   tests/slurm/cluster.sh start     munged + slurmctld + slurmd, wait until the node is idle
#   tests/slurm/cluster.sh stop      cancel our jobs, stop the daemons we started, restore conf
#   tests/slurm/cluster.sh status    sinfo/squeue of the running cluster
#
# All state (munge key and socket, spool dirs, pid and log files) lives in $LINBENCH_SLURM_STATE
# (default /tmp/linbench-slurm). The one file outside it is /etc/slurm/slurm.conf: job steps
# (the `srun` that the executor plugin runs inside each job) read the default path, because the
# plugin strips SLURM_* variables such as SLURM_CONF from the step's environment. `start`
# refuses to replace a file it did not write (unless LINBENCH_SLURM_FORCE=1: then it keeps a
# copy, which `stop` puts back), and `stop` removes its own.
#
# Knobs (environment): LINBENCH_SLURM_STATE, LINBENCH_SLURM_CPUS (2),
# LINBENCH_SLURM_MEM_MB (RealMemory, 8000), LINBENCH_SLURM_PORT (slurmctld port, 16817;
# slurmd uses the next one), LINBENCH_SLURM_FORCE.
set -euo pipefail

STATE=${LINBENCH_SLURM_STATE:-/tmp/linbench-slurm}
if [[ $STATE != /?*/?* ]]; then
    echo "LINBENCH_SLURM_STATE must be a directory below / (got '$STATE')" >&2
    exit 2
fi
CPUS=${LINBENCH_SLURM_CPUS:-2}
MEM_MB=${LINBENCH_SLURM_MEM_MB:-8000}
PORT=${LINBENCH_SLURM_PORT:-16817}
NODE=linbench1
PARTITION=debug
CONF=/etc/slurm/slurm.conf
BACKUP=$STATE/slurm.conf.orig
SOCKET=$STATE/munge/munge.socket.2

log() { echo "[cluster] $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

install() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
        ! command -v sbatch >/dev/null; then
        missing+=(slurm-wlm)
    fi
    if ((${#missing[@]} == 0)); then
        log "slurm-wlm and munge already installed"
        return
    fi
    [[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root"
    log "installing ${missing[*]}"
    # --no-install-recommends: slurm-wlm recommends dozens of -dev plugin packages.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

die_with_log() {
    tail -n 20 "$1" >&2 2>/dev/null || true
    die "$2 (log: $1)"
}

# Wait until "$@" succeeds, at most $1 seconds ($2 names what we wait for).
wait_for() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.5
    done
}

node_idle() { [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) == idle* ]]; }

write_conf() {
    local host
    host=$(hostname -s)
    cat <<EOF
# Written by linbench tests/slurm/cluster.sh; removed by 'cluster.sh stop'.
ClusterName=linbench
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No cgroups: plain process tracking, no task binding (works inside containers).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# No slurmdbd, so no sacct: the Snakemake plugin must poll with squeue, which sees finished
# jobs for MinJobAge seconds (must exceed 3x the plugin's first status-check delay).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
MpiDefault=none
ReturnToService=2
# Trust this file over what slurmd detects, so a smaller CI machine does not drain the node.
SlurmdParameters=config_overrides
KillWait=5
NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    [[ $(id -u) == 0 ]] || die "starting the cluster needs root"
    for tool in munged mungekey slurmctld slurmd sbatch sinfo; do
        command -v "$tool" >/dev/null || die "$tool not found; run '$0 install' first"
    done
    if [[ -e $STATE ]]; then
        log "stale state in $STATE; stopping first"
        stop
    fi
    mkdir -p "$STATE"/{munge,ctld,d}
    # munged insists that everyone may traverse its socket directory; the key stays 0600.
    chmod 755 "$STATE" "$STATE/munge"

    # Never take over the configuration of a real SLURM installation.
    if [[ -e $CONF ]] && ! grep -q '^# Written by linbench' "$CONF"; then
        [[ ${LINBENCH_SLURM_FORCE:-} == 1 ]] ||
            die "$CONF exists (a real SLURM set-up?); LINBENCH_SLURM_FORCE=1 replaces it" \
                "until 'stop'"
        cp -p "$CONF" "$BACKUP"
    fi
    mkdir -p /etc/slurm
    write_conf >"$CONF"

    log "munged (socket $SOCKET)"
    mungekey --create --keyfile="$STATE/munge/munge.key"
    munged --key-file="$STATE/munge/munge.key" --socket="$SOCKET" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed"
    wait_for 20 munged bash -c "munge -n -S '$SOCKET' | unmunge -S '$SOCKET'" ||
        die_with_log "$STATE/munge/munged.log" "munged did not answer"

    log "slurmctld (port $PORT)"
    # -c: start from a clean state (no jobs or nodes remembered from an earlier run).
    slurmctld -c -f "$CONF"
    wait_for 30 slurmctld scontrol ping ||
        die_with_log "$STATE/slurmctld.log" "slurmctld did not answer"

    log "slurmd (node $NODE, $CPUS CPUs, ${MEM_MB} MB)"
    slurmd -N "$NODE" -f "$CONF"
    wait_for_node || die_with_log "$STATE/slurmd.log" "node $NODE did not become idle"
    log "up: $(sinfo -h -o '%P %D %T %c CPUs %m MB')"
}

wait_for_node() {
    local deadline=$((SECONDS + 60)) resumed=0
    until node_idle; do
        ((SECONDS < deadline)) || return 1
        # A node that registered before the controller was ready can come up DOWN.
        if ((!resumed)) && [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) == down* ]]; then
            scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
            resumed=1
        fi
        sleep 0.5
    done
}

# Send SIGTERM to the pid in file $1, wait up to 15 s, then SIGKILL.
stop_pid() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    # Only signal the pid if it still is the daemon we started (pids get reused).
    if kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
        log "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name did not stop; SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

stop() {
    # Cancel whatever is still queued or running on our cluster, so slurmd can reap the
    # job steps it started before it goes away.
    if [[ -s $STATE/slurmctld.pid ]]; then
        local jobs
        if ! jobs=$(squeue -h -o %i 2>&1); then
            log "squeue failed, not cancelling jobs: $jobs"
        elif [[ -n $jobs ]]; then
            log "cancelling jobs: $(echo $jobs)"
            # shellcheck disable=SC2086
            scancel $jobs || true
            for _ in $(seq 30); do
                [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null) ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_pid "$STATE/slurmd.pid" slurmd
    stop_pid "$STATE/slurmctld.pid" slurmctld
    stop_pid "$STATE/munge/munged.pid" munged
    if [[ -e $BACKUP ]]; then
        mv -f "$BACKUP" "$CONF"
    elif [[ -e $CONF ]] && grep -q '^# Written by linbench' "$CONF"; then
        rm -f "$CONF"
    fi
    # Keep the logs for a post-mortem, drop the rest.
    if [[ -d $STATE ]]; then
        mkdir -p "$STATE.logs"
        cp -f "$STATE"/*.log "$STATE/munge/munged.log" "$STATE.logs/" 2>/dev/null || true
        rm -rf "$STATE"
        log "stopped; daemon logs in $STATE.logs/"
    fi
}

status() {
    sinfo
    squeue
}

case ${1:-} in
install) install ;;
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
