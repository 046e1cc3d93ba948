#!/usr/bin/env bash
# Install the pinned MCP clients (package-lock.json) into node_modules/ with `npm ci`,
# unless the installed copy already matches the lock. Needs node and npm (.ci/run
# installs them where missing). tests/test_mcp_clients.py runs this too.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/@modelcontextprotocol/sdk ] || ! cmp -s package-lock.json node_modules/.lifecycle-installed-lock.json 2>/dev/null; then
    echo "installing the MCP Inspector and the TypeScript SDK (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.lifecycle-installed-lock.json
fi
