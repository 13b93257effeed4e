#!/usr/bin/env bash
# Build the local Debian bookworm image with systemd as PID 1 that the Molecule
# scenarios run on. No image registry is needed: the root filesystem comes from
# debootstrap and Debian's mirror, `docker import` turns it into a base image,
# and `docker build` (Dockerfile + provision.sh next to this script) finishes it.
#
# The image is tagged with a hash of everything it is built from (the files in
# this directory, the mirrors, the CAs the build host adds). When that tag
# exists, the script only makes sure the stable tag points at it and returns:
# a re-run is a no-op that touches neither the network nor the disk.
#
# Usage: build-debian-systemd.sh [--force] [--print-image] [--print-run-flags]
#   --force            rebuild even when the image for these inputs exists
#   --print-image      print the stable image name and exit
#   --print-run-flags  print the `docker run` flags systemd needs and exit
#
# Environment:
#   PGHA_TEST_IMAGE             image name with tag, default localhost/pgha-debian-systemd:bookworm
#   PGHA_DEBIAN_MIRROR          Debian archive URL (default: the build host's apt sources)
#   PGHA_DEBIAN_SECURITY_MIRROR Debian security archive URL (default: the build host's)
#   PGHA_IMAGE_WORKDIR          where debootstrap builds the root filesystem, default /var/tmp
set -euo pipefail

say() { printf 'build-debian-systemd.sh: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
image=${PGHA_TEST_IMAGE:-localhost/pgha-debian-systemd:bookworm}
# "localhost/" names a registry that does not exist, so a missing image fails
# at once instead of Docker trying to pull a namesake from Docker Hub.
case ${image##*/} in
    *:*) ;;
    *) fail "PGHA_TEST_IMAGE must name a tag (e.g. $image:bookworm)" ;;
esac
repository=${image%:*}
stable_tag=${image##*:}
host_ca_bundle=/etc/ssl/certs/ca-certificates.crt

# What systemd needs to run as PID 1 in a container on this kind of host
# (`--privileged` fails here with "unable to apply caps"). The Molecule
# platforms in molecule/*/molecule.yml use the same settings.
run_flags=(
    --cap-add SYS_ADMIN
    --cgroupns=host
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp
)


force=
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --print-image) printf '%s\n' "$image"; exit 0 ;;
        --print-run-flags) printf '%s\n' "${run_flags[*]}"; exit 0 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) fail "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

# The first http(s) URI that the build host's apt sources use for a suite, so
# the image fetches from the same mirror (and through the same route) as the
# host. Both the one-line and the deb822 formats are read.
host_mirror() {
    local wanted=$1 f uri
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk -v s="$wanted" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == s && $i ~ /^https?:\/\//) { print $i; exit }
            }' "$f")
        if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri=$(awk -v s="$wanted" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uri = ""; ok = 0; off = 0; deb = 0
                for (n = 1; n <= NF; n++) {
                    line = $n
                    if (line ~ /^#/) continue
                    split(line, kv, ":")
                    key = tolower(kv[1]); sub(/^[^:]*:[ \t]*/, "", line)
                    if (key == "uris") { split(line, u, /[ \t]+/); uri = u[1] }
                    if (key == "suites") { m = split(line, w, /[ \t]+/); for (j = 1; j <= m; j++) if (w[j] == s) ok = 1 }
                    if (key == "types") { m = split(line, w, /[ \t]+/); for (j = 1; j <= m; j++) if (w[j] == "deb") deb = 1 }
                    if (key == "enabled" && tolower(line) == "no") off = 1
                }
                if (ok && deb && !off && uri ~ /^https?:\/\//) { print uri; exit }
            }' "$f")
        if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
    done
}

mirror=${PGHA_DEBIAN_MIRROR:-$(host_mirror "$suite")}
mirror=${mirror:-http://deb.debian.org/debian}
security_mirror=${PGHA_DEBIAN_SECURITY_MIRROR:-$(host_mirror "$suite-security")}
security_mirror=${security_mirror:-http://deb.debian.org/debian-security}

command -v docker >/dev/null 2>&1 || fail "the docker client is missing; run 'make system-deps'"
docker info >/dev/null 2>&1 || fail "no Docker engine answers; run 'make system-deps' (it starts dockerd)"
[ -r "$host_ca_bundle" ] || fail "$host_ca_bundle is missing; install ca-certificates"
command -v python3 >/dev/null 2>&1 || fail "python3 is missing"

# The CAs the build host trusts beyond its distribution's set: typically the
# CA of an HTTPS-intercepting proxy, without which pip in a container cannot
# reach the package index. Only these are copied in: the host's copy of the
# distribution's set may be older than the image's and still hold CAs that
# Debian has since distrusted.
host_extra_cas() {
    python3 - "$host_ca_bundle" /usr/share/ca-certificates <<'EOF'
import os
import re
import sys

PEM = re.compile(r'-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----')


def certificates(path):
    with open(path) as f:
        for match in PEM.finditer(f.read()):
            yield ''.join(match.group(1).split()), match.group(0)


bundle, distro_dir = sys.argv[1:]
distro = set()
for root, _dirs, files in os.walk(distro_dir):
    for name in files:
        if name.endswith('.crt'):
            distro.update(body for body, _ in certificates(os.path.join(root, name)))
seen = set()
for body, pem in certificates(bundle):
    if body not in distro and body not in seen:
        seen.add(body)
        print(pem)
EOF
}
extra_cas=$(host_extra_cas) || fail "could not read the CA bundle $host_ca_bundle"

# Everything the image is built from. A change to any of it gives a new tag,
# so the next run rebuilds.
inputs_hash=$(
    {
        for f in "$here"/*; do
            [ -f "$f" ] || continue
            printf '%s\n' "${f##*/}"
            sha256sum <"$f"
        done
        printf 'suite=%s\nmirror=%s\nsecurity=%s\n' "$suite" "$mirror" "$security_mirror"
        printf '%s\n' "$extra_cas"
    } | sha256sum | cut -c1-16
)
hash_tag=$stable_tag-$inputs_hash

if [ -z "$force" ] && docker image inspect "$repository:$hash_tag" >/dev/null 2>&1; then
    docker tag "$repository:$hash_tag" "$image"
    say "up to date: $image ($hash_tag)"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || fail "building the image needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null 2>&1 || fail "debootstrap is missing; run 'make system-deps'"

work=
base_image=$repository-rootfs:$inputs_hash
selftest_container=pgha-image-selftest-$$
cleanup() {
    docker rm -f "$selftest_container" >/dev/null 2>&1 || true
    docker rmi "$base_image" >/dev/null 2>&1 || true
    if [ -n "$work" ] && [ -d "$work" ]; then
        # debootstrap mounts /proc and /sys inside the target and can leave
        # them mounted when it fails; rm must never walk into the host's.
        awk -v d="$work/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" || true; done
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

started=$SECONDS
work=$(mktemp -d "${PGHA_IMAGE_WORKDIR:-/var/tmp}/pgha-image.XXXXXX")
rootfs=$work/rootfs
context=$work/context
mkdir -p "$context"

say "building $repository:$hash_tag from $mirror ($suite) and $security_mirror"
say "debootstrap --variant=minbase $suite"
debootstrap --variant=minbase --components=main "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    fail "debootstrap failed (last lines above)"
}
say "debootstrap done after $((SECONDS - started)) s"

# debootstrap copies these from the build host; Docker provides its own at
# run time, and the host's must not leak into the image. The apt sources are
# replaced by debian.sources (below).
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname" "$rootfs/etc/apt/sources.list"
rm -f "$rootfs"/var/cache/apt/archives/*.deb

tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -C "$rootfs" -cf - . | docker import - "$base_image" >/dev/null
rm -rf --one-file-system "$rootfs"

cat >"$context/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
printf '%s\n' "$extra_cas" >"$context/host-extra-cas.pem"
cp "$here/Dockerfile" "$here/provision.sh" "$context/"

say "docker build"
docker build --build-arg "BASE_IMAGE=$base_image" \
    --label "org.pgha.test-image.inputs=$inputs_hash" \
    -t "$repository:$hash_tag" "$context" >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    fail "docker build failed (last lines above)"
}
say "docker build done after $((SECONDS - started)) s"

# Boot it once the way the tests will; an image that does not reach
# "running" never gets its tag, so the next run builds again.
say "self-test: booting systemd in a container"
docker run -d --name "$selftest_container" "${run_flags[@]}" "$repository:$hash_tag" >/dev/null
state=
for _ in $(seq 1 60); do
    state=$(docker exec "$selftest_container" systemctl is-system-running 2>/dev/null) || true
    case "$state" in
        running | degraded | maintenance | stopping) break ;;
    esac
    sleep 1
done
if [ "$state" != running ]; then
    docker exec "$selftest_container" systemctl --failed --no-pager >&2 || true
    docker rmi -f "$repository:$hash_tag" >/dev/null 2>&1 || true
    fail "systemd in the new image is '${state:-not answering}', not 'running'"
fi
docker exec "$selftest_container" sh -euc '
    test ! -e /usr/sbin/policy-rc.d
    python3 -c "import apt, ensurepip, venv"
    test "$(systemd-detect-virt --container)" = docker
' || {
    docker rmi -f "$repository:$hash_tag" >/dev/null 2>&1 || true
    fail "the new image misses something the tests rely on (see above)"
}
docker rm -f "$selftest_container" >/dev/null

docker tag "$repository:$hash_tag" "$image"
# Images from older inputs only take disk space; one still used by a
# container stays (docker refuses), and goes the next time.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$repository" |
    while read -r old; do
        case "$old" in
            "$repository:$stable_tag-"*) [ "$old" = "$repository:$hash_tag" ] || docker rmi "$old" >/dev/null 2>&1 || true ;;
        esac
    done
size=$(docker image inspect -f '{{.Size}}' "$image")
say "built $image ($hash_tag, $((size / 1000000)) MB) in $((SECONDS - started)) s"
