#!/usr/bin/env bash
# README command 2: set everything up and run all tests: the notebooks (nbdev_test), the docs build's notebook
# processing (what nbdev_docs does before Quarto: scripts/check_docs.py), then pytest. Every step runs; the script
# exits non-zero if any failed, naming them.
# It installs system packages: Debian's chromium and npm with apt-get (as root, or with sudo when that needs no
# password) for the real-browser tests; without them those tests are skipped (outside CI).
. "$(dirname "$0")/setup_env.sh" dev
echo "scripts/test.sh: installing Debian chromium and npm with apt-get if missing (tests/browser_setup.sh), for the real-browser tests"
bash tests/browser_setup.sh     # Debian chromium and the widget JavaScript for the real-browser tests (root apt-get)
failed=()
step() { local name=$1; shift; SECONDS=0; "$@" || failed+=("$name"); echo "-- $name: ${SECONDS} s"; }
step "notebooks (nbdev_test)" .venv/bin/nbdev_test --n_workers 2
step "docs processing (scripts/check_docs.py)" .venv/bin/python scripts/check_docs.py --workers 2
step "pytest" .venv/bin/python -m pytest -q tests "$@"
if [ ${#failed[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
echo "all tests passed"
