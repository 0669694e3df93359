# Shared by scripts/run and scripts/test: create .venv and install the package.
# Sourced, not executed.  Progress goes to stderr: stdout is the program's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"

say() { echo "==> $*" >&2; }

need_python() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "chaosmagnet needs Python >= 3.10 (found: $("$PYTHON" --version 2>&1))" >&2
        exit 1
    fi
}

# install_system_packages LIST: the Debian packages named in LIST (one a line, optionally
# "package:command" = not needed when that command is already on PATH) that are missing.
install_system_packages() {
    local list="$1" entry pkg cmd missing=()
    while read -r entry; do
        entry="${entry%%#*}"; entry="${entry// /}"
        [ -z "$entry" ] && continue
        pkg="${entry%%:*}"; cmd=""
        [[ "$entry" == *:* ]] && cmd="${entry#*:}"
        if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done < "$list"
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if ! command -v apt-get >/dev/null; then
        echo "warning: no apt-get here: install ${missing[*]} yourself (listed in $list)" >&2
        return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq >/tmp/chaosmagnet-apt.log 2>&1 || true
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/chaosmagnet-apt.log 2>&1; then
        # one bad package must not keep the others out: retry one by one
        for pkg in "${missing[@]}"; do
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >>/tmp/chaosmagnet-apt.log 2>&1 \
                || echo "warning: could not install $pkg (see /tmp/chaosmagnet-apt.log); what needs it will not work" >&2
        done
    fi
}

make_venv() {
    need_python
    if [ ! -x .venv/bin/python ]; then
        say "creating .venv with $("$PYTHON" --version 2>&1)"
        "$PYTHON" -m venv .venv
        say "updating pip in .venv"
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >&2 2>/dev/null || true
    fi
}

# What an install depends on: the build files and C sources by content, the
# package's file names (an editable install picks up edits to host/ by itself,
# but not a new module's entry points or extras).
source_fingerprint() {
    {
        sha256sum pyproject.toml setup.py MANIFEST.in
        find csrc -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' -o -name '*.inc' -o -name '*.py' \) -print0 | sort -z | xargs -0 sha256sum
        find host -name '*.py' -not -path '*/__pycache__/*' | sort
        .venv/bin/python -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

# installed_for EXTRAS: true when an install with these extras (or a superset) matches the sources
installed_for() {
    local extras="$1" want stamp
    want="$(source_fingerprint)"
    for stamp in ".venv/.chaosmagnet-installed${extras:+-$extras}" ".venv/.chaosmagnet-installed-test"; do
        [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    done
    return 1
}

# install_package EXTRAS: editable install, building the C extensions (fails loudly);
# skipped when nothing it depends on changed since the last one.
install_package() {
    local extras="${1:-}" spec=".${1:+[$1]}"
    if installed_for "$extras"; then
        return 0
    fi
    local pip=(.venv/bin/python -m pip install -q --disable-pip-version-check --progress-bar off)
    if deps="$(.venv/bin/python - "$extras" 2>/dev/null <<'PY'
import sys, tomllib
from pip._vendor.packaging.requirements import Requirement
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(project["dependencies"])
if sys.argv[1]:
    deps += project["optional-dependencies"][sys.argv[1]]
for dep in map(Requirement, deps):
    if dep.marker is None or dep.marker.evaluate():
        extras = f"[{','.join(sorted(dep.extras))}]" if dep.extras else ""
        print(f"{dep.name}{extras}{dep.specifier}")
PY
)"; then
        local -a dep_list
        mapfile -t dep_list <<< "$deps"
        say "installing ${#dep_list[@]} dependencies from PyPI (the first time takes a minute or two)"
        if ! "${pip[@]}" "${dep_list[@]}" 2> .venv/install.log >&2; then
            grep -v "is ignored: it is neither" .venv/install.log >&2 || true
            echo "installing the dependencies failed (see above)" >&2
            exit 1
        fi
    fi
    say "building the C kernels and installing chaosmagnet${extras:+[$extras]} (editable)"
    if ! "${pip[@]}" -e "$spec" 2> .venv/install.log >&2; then
        grep -v "is ignored: it is neither" .venv/install.log >&2 || true
        echo "installation failed (see above)" >&2
        exit 1
    fi
    source_fingerprint > ".venv/.chaosmagnet-installed${extras:+-$extras}"
    say "installed; the next start skips this step until pyproject.toml, setup.py, csrc/ or host/'s files change"
}
