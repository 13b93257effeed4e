#!/usr/bin/env bash
# Every test tier, as `make test` (and so CI) runs them.
#
# The fast tiers run one after another first, so a broken build fails within
# minutes. Then the integration tier runs beside the Molecule tier: the
# integration tests spend most of their time waiting for the servers they
# start (etcd elections, Patroni loops, PostgreSQL restarts), Molecule for its
# containers, and run one after the other they took more than half of the
# run. Each prints when it started and how long it took, so a slow CI run
# says which tier grew.
set -euo pipefail
cd "$(dirname "$0")/../.."

make=${MAKE:-make}
output=tests/output
started=$SECONDS

stamp() { printf '=== %s (at %d s) ===\n' "$*" "$((SECONDS - started))"; }

# Explicit status checks: `set -e` does not apply inside a function called
# with `||`, as the Molecule tier is.
tier() {
    local name=$1 begun=$SECONDS status=0
    stamp "$name"
    "$make" --no-print-directory "$name" || status=$?
    if [ "$status" -ne 0 ]; then
        stamp "$name FAILED (exit $status) after $((SECONDS - begun)) s"
        return "$status"
    fi
    stamp "$name passed in $((SECONDS - begun)) s"
}

for name in system-deps venv venv-patroni image collection-link; do
    tier "$name"
done
for name in units lint changelog-lint build sanity; do
    tier "$name"
done

# The integration tier's output goes to a file while Molecule prints; it is
# shown in full once both are done.
mkdir -p "$output"
integration_log=$output/integration.log
stamp "integration (beside molecule, output in $integration_log)"
integration_begun=$SECONDS
# In a session of its own, so that an interrupted run can stop it with every
# server its tests started.
setsid "$make" --no-print-directory integration >"$integration_log" 2>&1 &
integration_pid=$!
trap 'kill -- "-$integration_pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

molecule_status=0
tier molecule || molecule_status=$?

integration_status=0
wait "$integration_pid" || integration_status=$?
integration_seconds=$((SECONDS - integration_begun))
trap - EXIT
echo "=== integration: output ==="
cat "$integration_log"
if [ "$integration_status" -eq 0 ]; then
    stamp "integration passed in $integration_seconds s"
else
    stamp "integration FAILED (exit $integration_status) after $integration_seconds s"
fi
if [ "$integration_status" -ne 0 ] || [ "$molecule_status" -ne 0 ]; then
    exit 1
fi
stamp "all tiers passed"
