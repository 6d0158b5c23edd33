#!/usr/bin/env bash
# Regenerate the layer picture and the import report of docs/architecture.md from the code
# (gdbm.utils.package_layers reads every module's imports by AST; needs Graphviz's `dot`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p docs/architecture
"$PY" -m gdbm.utils.package_layers --dot > docs/architecture/layers.dot
dot -Tsvg docs/architecture/layers.dot -o docs/architecture/layers.svg
"$PY" -m gdbm.utils.package_layers | tee docs/architecture/layers_report.txt
echo "wrote docs/architecture/layers.svg, layers.dot, layers_report.txt"
