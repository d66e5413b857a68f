#!/usr/bin/env bash
# Print the absolute path of a working Python interpreter of the given version.
#
#   scripts/find-python.sh 3.11     scripts/find-python.sh 3.13
#
# Lookup order (first that works wins):
#   1. $PYTHON311 / $PYTHON313 (…$PYTHONXY) if set; if set but broken, fail.
#   2. pythonX.Y on PATH, if it really runs and reports version X.Y
#      (a pyenv shim for a non-activated version does not).
#   3. $(pyenv prefix X.Y)/bin/pythonX.Y, if pyenv is installed.
# Otherwise exit 1 with a message saying how to provide one.
set -euo pipefail

if [ $# -ne 1 ] || ! [[ $1 =~ ^3\.[0-9]+$ ]]; then
    echo "usage: $0 X.Y   (e.g. 3.11 or 3.13)" >&2
    exit 2
fi

want=$1
var="PYTHON${want/./}"          # 3.13 -> PYTHON313

# check CANDIDATE: succeeds (and prints an absolute path) if it runs and is $want.
check() {
    local cand=$1 got
    got=$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || return 1
    [ "$got" = "$want" ] || return 1
    # Resolve to an absolute path without following symlinks out of a venv.
    "$cand" -c 'import os, sys; print(os.path.abspath(sys.executable))'
}

# 1. Explicit override.
if [ -n "${!var:-}" ]; then
    cand=${!var}
    if ! command -v "$cand" >/dev/null 2>&1; then
        echo "find-python: $var=$cand does not exist or is not executable." >&2
        exit 1
    fi
    if ! check "$cand"; then
        echo "find-python: $var=$cand does not run as Python $want." >&2
        exit 1
    fi
    exit 0
fi

# 2. pythonX.Y on PATH (must actually run; pyenv shims may not).
if command -v "python$want" >/dev/null 2>&1 && check "python$want"; then
    exit 0
fi

# 3. pyenv, even if the version is not activated.
if command -v pyenv >/dev/null 2>&1; then
    prefix=$(pyenv prefix "$want" 2>/dev/null || true)
    if [ -n "$prefix" ] && [ -x "$prefix/bin/python$want" ] && check "$prefix/bin/python$want"; then
        exit 0
    fi
fi

cat >&2 <<MSG
find-python: no working Python $want found.
  Looked at: \$$var (unset), python$want on PATH, and pyenv.
  Fix one of:
    - install it with pyenv:   pyenv install $want
    - or pass its path:        make ... $var=/path/to/python$want
      (or export $var=/path/to/python$want)
MSG
exit 1
