#!/usr/bin/env bash
# The full test suite, from a fresh Debian machine (the README's test command; .ci/run execs it).
#
# 1. Installs only what is missing, with apt-get (as root, or through sudo):
#    chromium (headless browser tests), libssl-dev + pkg-config (rust_socketio builds against
#    OpenSSL), prometheus (/usr/bin/prometheus: the live-output tests, harness/tests/live_*.rs,
#    start their own on a free loopback port), nodejs + npm only if `node` is not on PATH at all.
# 2. `npm ci` in interop/ (socket.io-client, socket.io, express, ws, playwright-core at the
#    versions of interop/package-lock.json; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1: the tests drive
#    Debian's /usr/bin/chromium and never download a browser).
# 3. python-socketio (interop/python/.venv) and Autobahn|Testsuite (interop/autobahn/.venv,
#    Python 2.7 from pyenv: /root/.pyenv/versions/2.7.18, or $PYTHON27).
# 4. builds, then runs `cargo test --workspace --profile ci --locked --no-fail-fast`
#    (profile ci = release + overflow checks, see Cargo.toml).
# Exits non-zero if any step or any test fails (after running all test binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
step() { printf '\n==> %s\n' "$*"; }

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
[ -x /usr/bin/prometheus ] || need_apt+=(prometheus)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
  step "Debian packages: chromium, libssl-dev, pkg-config, prometheus, node already installed"
fi
echo "node $(node --version), npm $(npm --version), $(chromium --version 2>/dev/null | head -1)"

step "npm ci in interop/ (browser download skipped)"
(cd interop && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

step "python-socketio in interop/python/.venv (interop/python/requirements.txt)"
(cd interop/python && { [ -x .venv/bin/python ] || python3 -m venv .venv; } \
  && .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt)

step "Autobahn|Testsuite (wstest) in interop/autobahn/.venv (interop/autobahn/requirements.txt)"
# wstest runs on Python 2.7 only: pyenv's 2.7.18, and virtualenv 20.21.1 (the last release
# that creates 2.7 environments) from a small python3 venv in interop/autobahn/.tools.
py27=${PYTHON27:-/root/.pyenv/versions/2.7.18/bin/python2.7}
if [ ! -x "$py27" ]; then
  echo "error: Python 2.7 not found at $py27 (Autobahn|Testsuite needs it)." >&2
  echo "       Install it with pyenv (\`pyenv install 2.7.18\`) or set PYTHON27=/path/to/python2.7." >&2
  exit 1
fi
t=$SECONDS
(cd interop/autobahn \
  && { [ -x .tools/bin/virtualenv ] || { python3 -m venv .tools \
        && .tools/bin/pip install -q --disable-pip-version-check virtualenv==20.21.1; }; } \
  && { [ -x .venv/bin/python ] || .tools/bin/virtualenv -q -p "$py27" .venv; } \
  && { cmp -s requirements.txt .venv/installed-requirements.txt \
       || { .venv/bin/pip install -q --disable-pip-version-check --no-python-version-warning \
              -r requirements.txt && cp requirements.txt .venv/installed-requirements.txt; }; })
interop/autobahn/.venv/bin/wstest --autobahnversion 2>/dev/null | head -2 || true
[ -x interop/autobahn/.venv/bin/wstest ] || { echo "error: wstest was not installed" >&2; exit 1; }
echo "ready in $((SECONDS - t)) s"

step "building the workspace and its tests (profile ci: release + overflow checks)"
t=$SECONDS
cargo test --workspace --profile ci --locked --no-run --quiet
echo "built in $((SECONDS - t)) s"

step "cargo test --workspace --profile ci --locked"
marker=$(mktemp)
t=$SECONDS
# --no-fail-fast: every test binary runs and every failure is listed; the exit code is still
# non-zero if any test failed.
cargo test --workspace --profile ci --locked --no-fail-fast 2>&1
echo "tests ran in $((SECONDS - t)) s"

shot=$(find "${TMPDIR:-/tmp}" -maxdepth 2 -path '*swarmbench-status-page-*' -name 'status-page.png' -newer "$marker" 2>/dev/null | head -1 || true)
report_shot=$(find "${TMPDIR:-/tmp}" -maxdepth 2 -path '*swarmbench-report-report-*' -name 'first-screen.png' -newer "$marker" 2>/dev/null | head -1 || true)
rm -f "$marker"
if [ -n "$shot" ]; then echo "status page screenshot (headless Chromium): $shot"; fi
if [ -n "$report_shot" ]; then echo "HTML report screenshot (headless Chromium): $report_shot"; fi
step "all tests passed in $((SECONDS - start)) s"
