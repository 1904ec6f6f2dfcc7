#!/usr/bin/env bash
# Installs what tests/test_browser.py needs:
#   * Debian's chromium (and npm, if missing) with apt-get, as root (sudo otherwise);
#   * (the Python playwright driver comes with the dev extra; never `playwright install`: the tests drive /usr/bin/chromium);
#   * the widget JavaScript that the standalone-HTML test serves offline from 127.0.0.1: require.js and
#     @jupyter-widgets/html-manager (the version range ipywidgets embeds), packed from the npm registry into
#     build/browser-js/ (jupyter-leaflet's own JavaScript comes with its pip package).
# usage: bash tests/browser_setup.sh      (scripts/test.sh runs it; it can be run again at any time)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || . scripts/setup_env.sh dev
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null || { [ -n "$SUDO" ] && ! sudo -n true 2>/dev/null; }; then
    echo "browser tests: ${missing[*]} missing and no root apt-get here: tests/test_browser.py will be skipped (not in CI)"
    exit 0
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

JS=build/browser-js
HTML_MANAGER=$(.venv/bin/python -c "from ipywidgets._version import __html_manager_version__ as v; print(v)")
if [ ! -f "$JS/html-manager/embed-amd.js" ] || [ ! -f "$JS/require.js" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER" "requirejs@^2.3.6" >/dev/null)
  mkdir -p "$tmp/html-manager" "$tmp/requirejs" "$JS/html-manager"
  tar xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$tmp/html-manager"
  tar xzf "$tmp"/requirejs-*.tgz -C "$tmp/requirejs"
  cp -r "$tmp/html-manager/package/dist/." "$JS/html-manager/"
  cp "$tmp/requirejs/package/require.js" "$JS/require.js"
fi
echo "browser tests ready: $(chromium --version 2>/dev/null | head -1), playwright $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))'), JavaScript in $JS"
