# Sourced by the README's two commands: make .venv (Python 3.11 + pip only) and install the package into it.
# usage: . scripts/setup_env.sh [EXTRAS]   e.g. ". scripts/setup_env.sh dev"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# (this machine's pip config names local index folders that may be absent: drop those warnings, keep real errors)
.venv/bin/python -m pip install --quiet -e ".${1:+[$1]}" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
