#!/usr/bin/env bash
# The full test suite, from a fresh machine: installs what the tests need (Debian packages,
# npm packages for the interop peers, Chromium for the browser tests), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f interop/package.json ]; then
  echo "==> installing interop npm packages"
  (cd interop && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "==> cargo test (workspace)"
cargo test --workspace --release --locked 2>&1
