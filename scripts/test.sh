#!/usr/bin/env bash
# Install avzsl with its test tools, then run the default test suite (slow tests: add -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
exec .venv/bin/python -m pytest "$@"
