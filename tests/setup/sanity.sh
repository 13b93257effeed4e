#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection.
#
# ansible-test only works on a tree laid out as
# .../ansible_collections/<namespace>/<name>, so the collection's files
# (tracked plus untracked-but-not-ignored, as git sees them) are copied into
# such a tree in a temporary directory. Ignored paths (.venv, tests/output, ...)
# stay out of the copy, so sanity never scans virtualenvs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$repo/.venv}
case "$venv" in /*) ;; *) venv=$repo/$venv ;; esac

say() { printf 'sanity.sh: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/ansible-test" ]; then
    say "$venv/bin/ansible-test not found; run 'make venv' first"
    exit 1
fi
# ansible-test starts helper programs by name (ansible-doc, python3.X, ...).
export PATH="$venv/bin:$PATH"

namespace=$(sed -n 's/^namespace:[[:space:]]*//p' "$repo/galaxy.yml")
name=$(sed -n 's/^name:[[:space:]]*//p' "$repo/galaxy.yml")
python_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# ansible-test bootstraps pip in each of its venvs with a get-pip script that it
# downloads from a host that is not reachable from every machine (no internet,
# only a package index). It first looks for the script in its cache, so put a
# stand-in there: pip from the wheel bundled with Python (ensurepip), then the
# requested pip version from the configured package index.
stand_in_marker='pgha.cluster get-pip stand-in'
get_pip=$(PY_VERSION=$python_version "$venv/bin/python" - <<'EOF'
import os
import types

from ansible_test._internal.python_requirements import get_venv_packages

pip_version = get_venv_packages(types.SimpleNamespace(version=os.environ['PY_VERSION']))['pip']
# Same file name as ansible_test/_util/target/setup/requirements.py expects.
print(os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % pip_version.replace('.', '_')))
EOF
)
if [ -e "$get_pip" ] && ! grep -q "$stand_in_marker" "$get_pip"; then
    say "keeping $get_pip (not ours: presumably the real get-pip script)"
else
    mkdir -p "$(dirname "$get_pip")"
    cat >"$get_pip.tmp" <<EOF
# $stand_in_marker, written by tests/setup/sanity.sh.
# Called as: python get_pip.py [pip options] <requirement>... [--no-setuptools] [--no-wheel]
import ensurepip
import os
import subprocess
import sys


def main():
    wanted = sys.argv[1:]
    # ensurepip deletes every PIP_* variable and points PIP_CONFIG_FILE at
    # /dev/null, which would hide the machine's index and CA settings from the
    # pip install below: restore the environment as it was.
    saved_env = dict(os.environ)
    ensurepip.bootstrap()
    os.environ.clear()
    os.environ.update(saved_env)

    # Those two are get-pip options, not pip options.
    args = [a for a in wanted if a not in ('--no-setuptools', '--no-wheel')]
    rc = subprocess.call([sys.executable, '-m', 'pip', 'install'] + args)
    if rc == 0 and '--no-setuptools' in wanted:
        # ensurepip of Python < 3.12 installs setuptools as well; ansible-test
        # asked for a venv without it.
        rc = subprocess.call([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--quiet', 'setuptools'])
    return rc


if __name__ == '__main__':
    sys.exit(main())
EOF
    mv "$get_pip.tmp" "$get_pip"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pgha-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/$namespace/$name
mkdir -p "$dest"

# --ignore-missing-args: a tracked file deleted in the work tree is still listed.
git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | rsync -a --from0 --files-from=- --ignore-missing-args "$repo/" "$dest/"

cd "$dest"
say "ansible-test sanity on $namespace.$name (python $python_version)"
ansible-test sanity --venv --python "$python_version" --color no "$@"
