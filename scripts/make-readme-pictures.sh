#!/usr/bin/env bash
# Remake the README's first pictures and the model card's failure cases (docs/images/) with the shipped model
# (src/talkinghead/weights/talkinghead-warp128-shared.safetensors): the packaged public-domain Mona Lisa and, when
# ../shared/data is present, the public-domain Gogol portrait (oil, after F. Moller, 1840; only the generated
# pictures are committed, never the file), driven by our synthetic talking head for 250 frames (10 s at 25 fps).
# Usage: scripts/make-readme-pictures.sh [OUT]        (default: docs/images)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$repo/docs/images}"
gogol="$repo/../shared/data/portraits/gogol_portrait__sadtalker_art_11.png"
extra=()
if [ -f "$gogol" ]; then extra=(--portrait "$gogol"); fi
python -m talkinghead.showcase "$out" --frames 250 "${extra[@]}"
