#!/usr/bin/env bash
# trustlane quickstart: sets up everything on a fresh machine with Python 3.11+, then runs the job.
#   ./quickstart.sh demo   — the main job on the embedded default (SQLite + local files, no server)
#   ./quickstart.sh test   — lint, type-check and the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

pick_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "error: trustlane needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
}

setup() {
    local lock=requirements-dev.lock
    local stamp=.venv/.installed
    local want
    want=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ ! -x .venv/bin/python ]; then
        "$(pick_python)" -m venv .venv
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
        echo "$want" >"$stamp"
    fi
}

case "${1:-}" in
demo)
    shift
    setup
    exec .venv/bin/trustlane demo "$@"
    ;;
setup)
    setup
    ;;
test)
    shift
    setup
    .venv/bin/ruff check src tests
    .venv/bin/ruff format --check src tests
    .venv/bin/mypy
    exec .venv/bin/pytest -W error "$@"
    ;;
*)
    echo "usage: ./quickstart.sh demo | test" >&2
    exit 2
    ;;
esac
