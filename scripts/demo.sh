#!/usr/bin/env bash
# The main job on the built-in demo: install avzsl, then generate -> extract -> train -> evaluate (CPU, minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh demo
exec .venv/bin/avzsl-demo --out "${1:-demo_out}"
