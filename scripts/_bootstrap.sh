# Sourced by every command in scripts/: finds the project, installs uv when missing, syncs the
# locked environment (quietly, and only when the lock changed), and exports PY, the interpreter.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PROJECT_ROOT
if ! command -v uv >/dev/null 2>&1; then
  export PATH="$HOME/.local/bin:$PATH"
  if ! command -v uv >/dev/null 2>&1; then
    echo "[bootstrap] installing uv with pip" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv >&2 \
      || python3 -m pip install --quiet --disable-pip-version-check --user uv >&2
  fi
fi
stamp="$PROJECT_ROOT/.venv/.synced-lock"
if [ ! -x "$PROJECT_ROOT/.venv/bin/python" ] || ! cmp -s "$PROJECT_ROOT/uv.lock" "$stamp" 2>/dev/null; then
  echo "[bootstrap] syncing the environment from uv.lock" >&2
  (cd "$PROJECT_ROOT" && uv sync --frozen --quiet >&2)
  cp "$PROJECT_ROOT/uv.lock" "$stamp"
fi
PY="$PROJECT_ROOT/.venv/bin/python"
export PYTHONPATH="$PROJECT_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PY
