#!/bin/sh
# Runs inside `docker build` (see Dockerfile): turns the debootstrap minbase
# root filesystem into the test image. Files from the build context are in
# the directory this script is in.
set -eu

context=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive

# fsync after every file dpkg writes buys nothing in a throw-away container
# and makes package installs in the tests several times slower.
echo force-unsafe-io >/etc/dpkg/dpkg.cfg.d/pgha-unsafe-io
# Translated package descriptions are never read here; skipping them makes
# every `apt-get update` in the tests smaller.
echo 'Acquire::Languages "none";' >/etc/apt/apt.conf.d/99pgha-no-translations

apt-get update
# debootstrap took the release as published; this brings in bookworm-updates
# and the security archive, as on any maintained host.
apt-get -y -o Dpkg::Options::=--force-confold dist-upgrade
# systemd + dbus: PID 1 and what systemctl/hostnamectl talk to.
# python3 + python3-apt: Ansible modules (the apt module needs python3-apt).
# python3-venv + python3-pip: Patroni is pip-installed into a venv.
# netbase: /etc/services and /etc/protocols, which minbase lacks.
apt-get install -y --no-install-recommends \
    systemd systemd-sysv dbus \
    python3 python3-apt python3-venv python3-pip \
    ca-certificates netbase iproute2 iputils-ping procps sudo curl less

# Trust the CAs the build host adds to its distribution's set (typically an
# HTTPS-intercepting proxy's CA; build-debian-systemd.sh picks them out):
# without them pip in a container cannot reach the package index when the
# host only can through that proxy. Any that Debian already ships are skipped.
python3 - "$context/host-extra-cas.pem" /etc/ssl/certs/ca-certificates.crt \
    /usr/local/share/ca-certificates <<'EOF'
import os
import re
import sys

PEM = re.compile(r'-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----')


def certificates(path):
    with open(path) as f:
        for match in PEM.finditer(f.read()):
            body = ''.join(match.group(1).split())
            yield body, match.group(0)


host_bundle, system_bundle, out_dir = sys.argv[1:]
known = {body for body, _ in certificates(system_bundle)}
added = 0
for body, pem in certificates(host_bundle):
    if body in known:
        continue
    known.add(body)
    added += 1
    with open(os.path.join(out_dir, 'pgha-build-host-%02d.crt' % added), 'w') as f:
        f.write(pem + '\n')
print('provision.sh: %d CA certificate(s) of the build host added' % added)
EOF
update-ca-certificates
# pip releases that bundle their own CA list (certifi) would ignore the
# system store; point every pip, in every venv, at it.
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >/etc/pip.conf

# C.UTF-8 ships with libc; no locales package needed.
echo 'LANG=C.UTF-8' >/etc/default/locale
systemctl set-default multi-user.target
# Each container must get its own machine ID at boot (journald, dbus and
# anything that tells hosts apart by it); an empty file makes systemd
# generate one.
: >/etc/machine-id

# Services must start on install when systemd runs (the tests rely on it),
# so no policy-rc.d may stay behind. The package lists stay (as fresh as the
# image): installs work without an `apt-get update` first.
rm -f /usr/sbin/policy-rc.d
apt-get clean
rm -rf /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old
