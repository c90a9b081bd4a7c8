#!/usr/bin/env bash
# Check the import layers (pyproject.toml [tool.importlinter], docs/architecture.md) with import-linter.
# import-linter walks the folder of the installed `avzsl` package (avzsl_top/), where links to pipeline/,
# extractors/, model/, data_manifests/ and demo_media/ lay the subpackages out as they are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
"$(dirname "$python")/lint-imports" --no-cache "$@"
