#!/usr/bin/env bash
# Start what the test suite needs, then run pytest. Called by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
for hook in scripts/services/*.sh; do
  [ -e "$hook" ] || continue
  # each hook starts one service if it can, and exports what the tests need
  # shellcheck disable=SC1090
  source "$hook"
done
exec "$BIN/python" -m pytest "$@"
