#!/usr/bin/env bash
# Print the absolute path of a headless Chromium that really runs, installing
# Debian's package when there is none and we may (root, or passwordless sudo).
#
#   scripts/ensure-chromium.sh        # e.g. /usr/bin/chromium
#
# The report tests (tests/e2e/test_report.py) render reports in it; `make test`
# runs this first and hands the path to the tests as SCM_CHROMIUM.
#
# Lookup order (first that runs wins):
#   1. $SCM_CHROMIUM, if set; if set but broken, fail.
#   2. chromium, then chromium-browser, on PATH. A name that exists but does not
#      run counts as missing: Ubuntu's chromium-browser is a stub that asks for snap.
#   3. apt-get install chromium (Debian's package), as root or with `sudo -n`.
# Otherwise exit 1 with a one-line instruction.
set -euo pipefail

# runs CANDIDATE: print its absolute path if `CANDIDATE --version` works.
runs() {
    local path
    path=$(command -v "$1" 2>/dev/null) || return 1
    timeout 60 "$path" --headless --no-sandbox --version >/dev/null 2>&1 || return 1
    echo "$path"
}

if [ -n "${SCM_CHROMIUM:-}" ]; then
    runs "$SCM_CHROMIUM" && exit 0
    echo "ensure-chromium: SCM_CHROMIUM=$SCM_CHROMIUM does not run (try: $SCM_CHROMIUM --version)." >&2
    exit 1
fi

for name in chromium chromium-browser; do
    runs "$name" && exit 0
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: no Chromium found and no apt-get here: install Chromium and set SCM_CHROMIUM=/path/to/chromium." >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "ensure-chromium: no Chromium found: run 'sudo apt-get install chromium' (or set SCM_CHROMIUM=/path/to/chromium), then make test again." >&2
    exit 1
fi

# Progress on stderr: stdout carries only the path.
echo "==> installing Debian's chromium for the report tests (apt-get, about a minute)" >&2
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
runs chromium && exit 0
echo "ensure-chromium: apt-get installed chromium but it does not run (try: chromium --headless --version)." >&2
exit 1
