#!/bin/sh
# Make .venv with wstrio installed: `sh scripts/bootstrap.sh` to run the server,
# `sh scripts/bootstrap.sh test` for everything the test suite needs as well.
# Works on a fresh Debian 12 (Python 3.11): installs python3-venv if it is missing.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

apt_install() {
    $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q --upgrade pip

if [ "${1:-}" = "test" ]; then
    # The browser tests drive Debian's Chromium (Playwright never downloads one);
    # the proxy how-to's nginx and Caddy configs are run for real.
    missing=""
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
    command -v caddy >/dev/null 2>&1 || missing="$missing caddy"
    # The Redis bus's tests start their own redis-server (never the system service).
    command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
    # The interop matrix (tests/interop): Go's gorilla/websocket from Debian's source package
    # (built offline, GOPATH mode), Node's ws from npm (Debian's nodejs and npm, unless a node
    # with its own npm is there already).
    command -v go >/dev/null 2>&1 || missing="$missing golang-go"
    [ -d /usr/share/gocode/src/github.com/gorilla/websocket ] \
        || missing="$missing golang-github-gorilla-websocket-dev"
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
    # shellcheck disable=SC2086
    [ -z "$missing" ] || apt_install $missing
    # editable_mode=compat: a path entry that type checkers follow, so mypy finds wstrio
    # (and its py.typed) when checking an application against this checkout.
    PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e '.[test]' \
        --config-settings editable_mode=compat
    # ws, exactly as tests/interop/node/package-lock.json pins it, into tests/interop/node.
    (cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error)
    echo "wstrio and the test tools are installed in .venv: run .venv/bin/python -m pytest"
else
    PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q '.[redis]'  # serve --redis works too
    echo "wstrio is installed in .venv: run .venv/bin/python -m wstrio (or .venv/bin/wstrio --help)"
fi
