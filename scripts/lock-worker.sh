#!/usr/bin/env bash
# Regenerate the worker's lock from its input with uv (`make lock` runs this).
#
#   scripts/lock-worker.sh UV INPUT LOCK
#
# uv resolves INPUT for Python 3.11 and writes every artifact's sha256 and INPUT's build
# options (wheels only, where a package has wheels), keeping the versions LOCK already
# holds that still satisfy INPUT. Then the build options are put in the order pip needs:
# pip applies them as it reads them and `--only-binary :all:` clears every `--no-binary`
# read before it, while uv writes `--no-binary` first (uv reads them in any order).
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 UV INPUT LOCK" >&2
    exit 2
fi
uv=$1 input=$2 lock=$3

"$uv" pip compile --no-config -q --generate-hashes --emit-build-options \
    --python-version 3.11 --custom-compile-command "make lock" "$input" -o "$lock"

ordered="$(mktemp "$lock.XXXXXX")"
trap 'rm -f "$ordered"' EXIT
{
    grep -E '^# ' "$lock" | sed -n '1,2p'   # uv's header: generated, and by which command
    grep -E '^--only-binary' "$lock" || true
    grep -E '^--no-binary' "$lock" || true
    sed -e '1,2{/^# /d}' -e '/^--only-binary/d' -e '/^--no-binary/d' "$lock"
} >"$ordered"
cat "$ordered" >"$lock"   # keeps the lock's own mode
rm -f "$ordered"
trap - EXIT
