#!/usr/bin/env bash
# Build the collection tarball, install it offline into a throw-away
# collections path, and check the installed copy is usable: the files a user
# gets, importable module_utils, and documentation Ansible can load.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$repo/.venv}
case "$venv" in /*) ;; *) venv=$repo/$venv ;; esac

say() { printf 'build.sh: %s\n' "$*"; }
fail() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

[ -x "$venv/bin/ansible-galaxy" ] || fail "$venv/bin/ansible-galaxy not found; run 'make venv' first"
export PATH="$venv/bin:$PATH"

work=$(mktemp -d "${TMPDIR:-/tmp}/pgha-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
collections=$work/collections
# Only the throw-away path: a copy of the collection installed elsewhere on the
# machine must not stand in for the one just built.
export ANSIBLE_COLLECTIONS_PATH=$collections

ansible-galaxy collection build --output-path "$work/dist" "$repo"
tarballs=("$work"/dist/*.tar.gz)
if [ "${#tarballs[@]}" -ne 1 ] || [ ! -f "${tarballs[0]}" ]; then
    fail "expected one tarball in $work/dist"
fi
tarball=${tarballs[0]}

# build_ignore is easy to get wrong; a tarball with a virtualenv or
# ansible-test's output in it would be huge and leak local state.
if tar -tzf "$tarball" | grep -E '^(\.venv[^/]*|\.cache|tests/output|\.git|\.ci|\.pytest_cache)(/|$)|(^|/)__pycache__/|\.pyc$'; then
    fail "the tarball contains files that build_ignore should keep out (listed above)"
fi

# --offline: no Galaxy server is contacted; dependencies must already be
# installed (community.crypto ships with the `ansible` package in the venv),
# so this also checks that galaxy.yml's dependency range accepts it.
ansible-galaxy collection install --offline -p "$collections" "$tarball"

installed=$collections/ansible_collections/pgha/cluster
[ -f "$installed/MANIFEST.json" ] || fail "no MANIFEST.json in $installed"
python - "$installed/MANIFEST.json" "$repo/galaxy.yml" <<'EOF'
import json
import sys

import yaml

manifest = json.load(open(sys.argv[1]))['collection_info']
galaxy = yaml.safe_load(open(sys.argv[2]))
for key in ('namespace', 'name', 'version', 'dependencies'):
    if manifest[key] != galaxy[key]:
        sys.exit('build.sh: MANIFEST.json %s is %r, galaxy.yml says %r' % (key, manifest[key], galaxy[key]))
print('installed %(namespace)s.%(name)s %(version)s, dependencies %(dependencies)s' % manifest)
EOF

say "installed files:"
(cd "$installed" && find . -type f ! -name '*.pyc' | sed 's|^\./|  |' | sort)

# Import every module_utils file from the installed copy, not from the work tree.
mu_names=()
for f in "$installed"/plugins/module_utils/*.py; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .py)
    [ "$n" = __init__ ] || mu_names+=("$n")
done
if [ "${#mu_names[@]}" -gt 0 ]; then
    PYTHONPATH=$collections python - "$installed" "${mu_names[@]}" <<'EOF'
import importlib
import os
import sys

installed = os.path.realpath(sys.argv[1])
for name in sys.argv[2:]:
    mod = importlib.import_module('ansible_collections.pgha.cluster.plugins.module_utils.' + name)
    if not os.path.realpath(mod.__file__).startswith(installed + os.sep):
        sys.exit('build.sh: %s was imported from %s, not from the installed collection' % (name, mod.__file__))
print('imported module_utils: %s' % ', '.join(sys.argv[2:]))
EOF
fi

# ansible-doc loads each plugin's and role's documentation the way a user's
# run would (doc fragments included), so broken docs fail the build here.
# One filter file holds several filters, each documented in a YAML file of
# its own name: those files name the filters.
doc_checked=0
for dir_type in modules:module:py inventory:inventory:py lookup:lookup:py filter:filter:yml callback:callback:py; do
    IFS=: read -r dir type ext <<<"$dir_type"
    for f in "$installed"/plugins/"$dir"/*."$ext"; do
        [ -e "$f" ] || continue
        n=$(basename "$f" ."$ext")
        [ "$n" = __init__ ] && continue
        ansible-doc -t "$type" "pgha.cluster.$n" >/dev/null
        doc_checked=$((doc_checked + 1))
    done
done
for d in "$installed"/roles/*/; do
    [ -d "$d" ] || continue
    ansible-doc -t role "pgha.cluster.$(basename "$d")" >/dev/null
    doc_checked=$((doc_checked + 1))
done
say "ansible-doc loaded $doc_checked plugin/role docs"
say "OK: $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
