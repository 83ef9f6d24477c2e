#!/usr/bin/env bash
# Run the whole test suite (unit, emulator, DAG, browser and full-stack tests).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_hook.py -k token`.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
exec uv run --frozen pytest "$@"
