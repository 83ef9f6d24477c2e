#!/usr/bin/env bash
# Start the embedded Spotfire emulator and run the end-to-end example DAG against it with
# `airflow dags test` in a throwaway AIRFLOW_HOME, then print what happened in Spotfire.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
exec uv run --frozen python scripts/demo.py "$@"
