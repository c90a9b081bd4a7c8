#!/usr/bin/env bash
# Check the import layers (pyproject.toml [tool.importlinter], docs/architecture.md) with import-linter.
# import-linter walks the folders of the `avzsl` package, but the repository maps its subpackages from other folders
# (setuptools package-dir), so it reads them through a temporary tree of links laid out as installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
shim="$(mktemp -d)"
trap 'rm -rf "$shim"' EXIT
mkdir "$shim/avzsl"
for module in avzsl_top/*.py; do ln -s "$PWD/$module" "$shim/avzsl/$(basename "$module")"; done
for folder in pipeline extractors model data_manifests demo_media; do ln -s "$PWD/$folder" "$shim/avzsl/$folder"; done
PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}" "$(dirname "$python")/lint-imports" --no-cache "$@"
