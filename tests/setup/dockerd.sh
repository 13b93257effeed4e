#!/usr/bin/env bash
# Make sure a Docker engine answers on this host. Machines without systemd
# (containers, sandboxes, CI runners) never start dockerd by themselves, and
# the Molecule scenarios need one.
set -euo pipefail

log_file=${DOCKERD_LOG:-/var/log/dockerd.log}
wait_seconds=${DOCKERD_WAIT_SECONDS:-60}

say() { printf 'dockerd.sh: %s\n' "$*" >&2; }

if ! command -v docker >/dev/null 2>&1; then
    say "the docker client is missing; run tests/setup/system-deps.sh first"
    exit 1
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "no Docker engine answers and starting dockerd needs root"
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "dockerd is missing; run tests/setup/system-deps.sh first"
    exit 1
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    # A dockerd that is still starting (or one run by somebody else) owns the
    # socket and pid file; a second one would only fail, so wait for it.
    say "dockerd is already running but not answering yet; waiting for it"
else
    # A dockerd that died leaves its pid file behind, and a new one refuses to
    # start while it is there.
    rm -f /var/run/docker.pid
    say "starting dockerd (log: $log_file)"
    mkdir -p "$(dirname "$log_file")"
    # setsid + nohup: dockerd must outlive the make/CI shell that started it
    # and must not get that shell's SIGHUP or its terminal.
    setsid nohup dockerd >>"$log_file" 2>&1 </dev/null &
fi

deadline=$((SECONDS + wait_seconds))
until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "no answer from dockerd after ${wait_seconds}s; last lines of $log_file:"
        tail -n 30 "$log_file" >&2 || true
        exit 1
    fi
    sleep 1
done
say "dockerd is up ($(docker info --format '{{.ServerVersion}} / {{.Driver}}' 2>/dev/null))"
