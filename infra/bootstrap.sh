#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs Hotline into it, with the test extras when
# asked. Idempotent: a second run only checks. Used by infra/run.sh and infra/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${HOTLINE_PYTHON:-}"
if [[ -z "$PY" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            PY="$candidate"; break
        fi
    done
fi
if [[ -z "$PY" ]]; then
    echo "bootstrap.sh: Python 3.11 is needed (apt-get install python3.11 python3.11-venv)" >&2
    exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv || { apt-get update -qq && apt-get install -y -qq python3-venv && "$PY" -m venv .venv; }
fi
extras="${1:-}"
stamp=".venv/.installed${extras:+-$extras}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    touch "$stamp"
fi
