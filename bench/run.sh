#!/usr/bin/env bash
# One command for the whole benchmark:  bash bench/run.sh [run.py options]
# Creates bench/.venv (the package from this checkout plus the peers in
# bench/requirements.txt), then runs bench/run.py in it. Set PYTHON to choose the
# interpreter (default: python3.11, else python3). BENCH_REINSTALL=1 refreshes the venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp="$venv/.installed"
want="$(cat "$here/requirements.txt" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
    "$py" -m venv "$venv"
fi
if [[ "${BENCH_REINSTALL:-0}" == 1 || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$root[postgres]" -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi
cd "$root"
exec "$venv/bin/python" "$here/run.py" "$@"
