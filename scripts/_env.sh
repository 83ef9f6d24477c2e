# Shared by scripts/*.sh: make sure uv exists and the locked environment is in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v uv >/dev/null 2>&1; then
  if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "uv not found: installing it with pip (python3 -m pip install uv)" >&2
    python3 -m pip install --quiet uv
  fi
  uv() { python3 -m uv "$@"; }
fi
uv sync --frozen --quiet
