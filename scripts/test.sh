#!/usr/bin/env bash
# README command 2: set everything up and run all tests (notebooks, then pytest). Exits non-zero on any failure.
. "$(dirname "$0")/setup_env.sh" dev
bash tests/browser_setup.sh     # Debian chromium and the widget JavaScript for the real-browser tests (root apt-get)
.venv/bin/nbdev_test --n_workers 2
.venv/bin/python -m pytest -q tests "$@"
