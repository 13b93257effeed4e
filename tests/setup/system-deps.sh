#!/usr/bin/env bash
# Install the Debian packages the test tiers, the test image build and the
# benchmarks need. Safe to run again: when everything is present it only asks
# dpkg and returns, without touching the network.
set -euo pipefail

packages=(
    etcd-server etcd-client       # real etcd for the integration tests
    haproxy                       # real HAProxy for the integration tests
    postgresql-15 postgresql-client-15  # real PostgreSQL under Patroni in the integration tests
    docker.io                     # engine for the Molecule scenarios
    debootstrap debian-archive-keyring gpgv  # builds the local test image
    python3-venv                  # venvs for Debian's own python3
    python3-etcd3                 # benchmark baseline: etcd3 with C++ protobuf
    shellcheck                    # lets ansible-test sanity check the shell scripts
    rsync git make procps ca-certificates
)

say() { printf 'system-deps.sh: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n -- bash "$0" "$@"
    fi
    say "installing Debian packages needs root, and sudo is not available"
    exit 1
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "this script expects a Debian (bookworm) system with dpkg and apt-get"
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

say "installing: ${missing[*]}"

# etcd-server and haproxy start their services from their maintainer scripts.
# Tests start their own instances on their own ports, so a distro-default
# etcd or haproxy would only hold ports and data dirs. invoke-rc.d asks
# policy-rc.d first; exit status 101 means "do not start". An existing policy
# belongs to the system (e.g. a container image) and is left alone.
policy=/usr/sbin/policy-rc.d
created_policy=
cleanup() {
    if [ -n "$created_policy" ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT
# Turn signals into an exit so the EXIT trap also runs when interrupted.
trap 'exit 130' INT
trap 'exit 143' TERM HUP
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from tests/setup/system-deps.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
fi

# Patroni creates and runs its own clusters; Debian's postgresql-common would
# otherwise create a "main" cluster (port 5432) when the server is installed.
# pg_createcluster reads this setting when the server package is installed,
# so it has to be in place before apt-get runs. A file the system already has
# is edited, not replaced: it may hold the administrator's other defaults.
createcluster_conf=/etc/postgresql-common/createcluster.conf
mkdir -p "${createcluster_conf%/*}"
if [ ! -e "$createcluster_conf" ]; then
    printf '# from tests/setup/system-deps.sh: Patroni creates the clusters\ncreate_main_cluster = false\n' \
        >"$createcluster_conf"
elif ! grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=[[:space:]]*false' "$createcluster_conf"; then
    sed -i -E 's/^[[:space:]]*#?[[:space:]]*create_main_cluster[[:space:]]*=.*$/create_main_cluster = false/' \
        "$createcluster_conf"
    grep -Eq '^create_main_cluster = false' "$createcluster_conf" \
        || printf 'create_main_cluster = false\n' >>"$createcluster_conf"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update </dev/null
# --no-install-recommends: docker.io would otherwise pull in needrestart and
# apparmor, which only get in the way on a test host; what is really needed is
# listed above.
apt-get install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null
say "done"
