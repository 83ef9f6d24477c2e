#!/usr/bin/env bash
# Regenerate constraints/airflow-<version>.txt: the versions a fresh install of the provider (with all
# extras) on that Airflow resolves to, with the hand-written pins at the top of the file kept as they are.
# Usage: bash scripts/constraints.sh 3.1.0 [python]   (python defaults to python3.11)
# The file is used as `pip install airflow-provider-spotfire "apache-airflow==<version>" -c <file>`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version="${1:?usage: bash scripts/constraints.sh <airflow version> [python]}"
python="${2:-python3.11}"
file="constraints/airflow-${version}.txt"
marker="# ---- resolved by scripts/constraints.sh"
[[ -f "$file" ]] || { echo "$file missing: write its header and required pins first" >&2; exit 1; }
grep -q "^$marker" "$file" || { echo "$file has no '$marker' line" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
awk -v m="$marker" '{ print } index($0, m) == 1 { exit }' "$file" > "$work/head.txt"
grep -E '^[A-Za-z0-9]' "$work/head.txt" > "$work/required.txt" || true
uv build --quiet --wheel -o "$work/dist"
uv venv --quiet --python "$python" "$work/venv"
wheel="$(ls "$work"/dist/*.whl)"
VIRTUAL_ENV="$work/venv" uv pip install --quiet \
  "airflow-provider-spotfire[openlineage,sql,polars] @ file://$wheel" "apache-airflow==$version" \
  -c "$work/required.txt"
required_names="$(sed -E 's/[<>=!~; ].*//' "$work/required.txt" | tr 'A-Z_.' 'a-z--' | sort -u)"
{
  cat "$work/head.txt"
  echo "# $(date -u +%Y-%m-%d), $("$work/venv/bin/python" -V), apache-airflow==$version with all extras"
  VIRTUAL_ENV="$work/venv" uv pip freeze | grep -v '^airflow-provider-spotfire' \
    | while IFS= read -r line; do
        name="$(printf '%s' "${line%%==*}" | tr 'A-Z_.' 'a-z--')"
        grep -qx "$name" <<<"$required_names" || printf '%s\n' "$line"
      done
} > "$work/new.txt"
mv "$work/new.txt" "$file"
echo "wrote $file ($(grep -c '==' "$file") pins)"
