#!/usr/bin/env bash
# Render diagrams/*.mmd with mermaid-cli and open every SVG in headless Chromium;
# exit 1 if any picture fails to render, does not open or is blank (check.py).
# Needs node/npm and Debian's chromium (.ci/run installs them where missing).
# Installs the pinned npm packages (package-lock.json) into node_modules/ with
# PUPPETEER_SKIP_DOWNLOAD=1: puppeteer drives /usr/bin/chromium (puppeteer.json),
# it downloads no browser of its own.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x node_modules/.bin/mmdc ] || ! cmp -s package-lock.json node_modules/.lifecycle-installed-lock.json 2>/dev/null; then
    echo "installing mermaid-cli (npm ci)"
    PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.lifecycle-installed-lock.json
fi
exec python3 check.py "$@"
