#!/usr/bin/env bash
# Remake the demo's warm start, src/talkinghead/weights/demo-tiny64-warm-start.safetensors: tiny-64 meta-learned
# with the demo's own recipe (talkinghead.demo.DEMO_OVERRIDES) on 1,500 synthetic people of seed 1000, whom
# the demo never tests on (tests/test_warm_start.py checks the seeds). The shipped file took 112 minutes on
# 2 CPU cores (in two sittings of 92 and 20; the second resumed the first exactly); the step count it reaches
# depends on the machine.
# Usage: scripts/make-demo-warm-start.sh [WORKDIR] [MINUTES]
set -euo pipefail
work="${1:-warm-start-work}"
minutes="${2:-112}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$work"
python - "$work/data" <<'PY'
import sys
from talkinghead.data.prepare import write_synthetic_dataset
write_synthetic_dataset(sys.argv[1], 1500, 1, 32, 64, seed=1000, name_prefix="warm")
PY
talkinghead train --data "$work/data" --preset tiny-64 --run-dir "$work/run" --steps 100000 \
    --max-minutes "$minutes" \
    --set loss.feature_network=mobilenet-offline --set loss.pixel_weight=10 \
    --set train.lr_generator=2e-4 --set train.lr_discriminator=8e-4 \
    --set train.checkpoint_every=1000 --set train.image_every=2000 --set train.log_every=50
newest="$(ls "$work"/run/checkpoints/training-*.safetensors | sort | tail -n 1)"
python -m talkinghead.training.warm_start "$newest" "$repo/src/talkinghead/weights/demo-tiny64-warm-start.safetensors"
