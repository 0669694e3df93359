# Shared by scripts/run and scripts/test: create .venv and install the package.
# Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"

need_python() {
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "chaosmagnet needs Python >= 3.10 (found: $("$PYTHON" --version 2>&1))" >&2
        exit 1
    fi
}

make_venv() {
    need_python
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv"
        "$PYTHON" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
}

# install_package EXTRAS: editable install, building the C extensions (fails loudly)
install_package() {
    local extras="${1:-}"
    echo "==> installing chaosmagnet${extras:+[$extras]} (builds the C kernels)"
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}" 2> .venv/install.log; then
        grep -v "is ignored: it is neither" .venv/install.log >&2 || true
        echo "installation failed (see above)" >&2
        exit 1
    fi
}
