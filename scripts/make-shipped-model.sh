#!/usr/bin/env bash
# Refresh the shipped real-face model, src/talkinghead/weights/talkinghead-warp128-shared.safetensors, from a
# warp-128 run meta-learned on the training part of docs/splits/shared-dev-data.json: copies the run's export
# without W (one row per training clip), records the training index's clip/frame/people counts (after checking
# they are the export's identity record) and prints the file's SHA-256 and size (at most 25 MB).
# Usage: scripts/make-shipped-model.sh [RUN|EXPORT] [INDEX] [--set model.FIELD=VALUE ...]  (defaults: /work/runs/issue25
# /work/data/train128/index.json; a run directory ships its latest export, a file that export, e.g. one kept from an
# earlier step; --set: how the shipped model runs, e.g. --set model.inference_sources=3, recorded in the file)
set -euo pipefail
run="${1:-/work/runs/issue25}"
index="${2:-/work/data/train128/index.json}"
export="$run"
if [ -d "$run" ]; then export="$run/export.safetensors"; fi
python -m talkinghead.shipped "$export" --index "$index" "${@:3}"
