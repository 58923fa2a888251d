#!/usr/bin/env bash
# CI step 2: the grid on a real, throwaway, single-node SLURM cluster (issue 8).
#
#   bash tests/slurm/run.sh [pytest options]
#
# Needs root (apt, daemons, /etc/slurm/slurm.conf). Installs slurm-wlm and munge when missing,
# and the SLURM executor plugin into the venv (the `slurm` extra; the venv is .venv, or the
# one of $LINBENCH_PYTHON), then runs tests/slurm/test_slurm_e2e.py, which starts the cluster
# and stops it again. The trap below stops it as well if this script is interrupted or pytest
# dies.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${LINBENCH_PYTHON:-.venv/bin/python}
started=$SECONDS
pytest_pid=

cleanup() {
    if [[ -n $pytest_pid ]] && kill -0 "$pytest_pid" 2>/dev/null; then
        kill -TERM "$pytest_pid" 2>/dev/null || true
        wait "$pytest_pid" 2>/dev/null || true
    fi
    bash tests/slurm/cluster.sh stop
}
trap cleanup EXIT
trap 'exit 143' TERM INT

bash tests/slurm/cluster.sh install
if ! "$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    "$PY" -m pip install --quiet -e '.[slurm]'
fi

# In the background and waited for, so a TERM reaches the trap at once.
LINBENCH_SLURM_E2E=1 "$PY" -m pytest -v -s -p no:cacheprovider tests/slurm/test_slurm_e2e.py "$@" &
pytest_pid=$!
status=0
wait "$pytest_pid" || status=$?
pytest_pid=
echo "SLURM step finished in $((SECONDS - started)) s (exit $status)"
exit "$status"
