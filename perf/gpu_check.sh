#!/usr/bin/env bash
# The prepared GPU check of issue #8, for a GPU machine lent for ~15 minutes with no network.
#
#   perf/gpu_check.sh OUT [--steps LIST] [--tiny]
#
# Steps (default: all, in this order; LIST is comma-separated, e.g. --steps device,overhead):
#   device    the GPU, driver, torch/CUDA versions                      -> OUT/device.txt
#   overhead  perf/overhead.py: harness / bare loop (target <= 1.05), KD-on step cost vs
#             baseline beside the teacher forward, KD-off vs baseline     -> OUT/overhead.json
#   epoch     perf/epoch_time.py: ResNet-18 (CIFAR stem), full CIFAR-10, bf16, channels_last,
#             s/epoch and img/s (target < 3 s/epoch on an H100)        -> OUT/epoch_time.json
#   suite     w2s-bench run suites/cifar10-gpu.yaml (teacher + baseline + w2s x 3 seeds,
#             sized for < 8 min on one H100)                          -> OUT/results/
#   report    w2s-bench report on it                                  -> OUT/reports/cifar10-gpu/
#   compile   the epoch timing again with torch.compile (last: it is optional and slow to
#             compile)                                                -> OUT/epoch_time_compiled.json
# Everything printed also goes to OUT/gpu_check.log; OUT/summary.txt has the headline numbers.
# A device command may run at most 10 minutes: run `--steps device,overhead,epoch` and then
# `--steps suite,report,compile` as two calls on the same warm machine.
#
# Data, with no network: $W2S_DATA_ROOT if set, else ./data, holding cifar10/{train,test},
# or just the pack file data/cifar10.w2spack (`w2s-bench pack cifar10 --out
# data/cifar10.w2spack`, 55 MiB: carry it along). Python: $PYTHON, else .venv/bin/python,
# else python3 (it needs torch, torchvision, pydantic, click, rich, pyyaml, pandas,
# matplotlib, pillow); this checkout is put on PYTHONPATH, so no install is needed.
#
# --tiny: a CPU dry run of the whole script in a few minutes (small nets, a few hundred
# images, a derived copy of the suite); it checks the plumbing, not the speed.
set -uo pipefail

usage() { sed -n '2,4p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$(realpath -m "$1"); shift
STEPS=device,overhead,epoch,suite,report,compile
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=1 ;;
    --steps) STEPS=${2:?--steps needs a list}; shift ;;
    *) usage ;;
  esac
  shift
done

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# decoded images (~180 MB for CIFAR-10) are cached outside OUT, so OUT stays small
export W2S_CACHE="${W2S_CACHE:-${TMPDIR:-/tmp}/w2s-cache}"
export W2S_DATA_ROOT="${W2S_DATA_ROOT:-$ROOT/data}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

W2S=("$PYTHON" -m benchmark.cli)
FAILED=()
has() { [[ ",$STEPS," == *",$1,"* ]]; }
step() { echo; echo "== $1 ($(date +%T), ${SECONDS} s into the check)"; }
run() {  # run NAME CMD...: keep going after a failure, remember it
  local name=$1; shift
  local t0=$SECONDS
  if "$@"; then echo "-- $name: ok in $((SECONDS - t0)) s"; else
    echo "-- $name: FAILED (exit $?) after $((SECONDS - t0)) s"; FAILED+=("$name"); fi
}

if [ $TINY = 1 ]; then
  DEV=(--device cpu); OVH=(--tiny --threads 1); EPOCH=(--tiny)
  SUITE="$OUT/cifar10-gpu-tiny.yaml"
  "$PYTHON" - "$SUITE" <<'EOF' || exit 1
import sys

import yaml

d = yaml.safe_load(open("suites/cifar10-gpu.yaml"))
d.update(name="cifar10-gpu-tiny", device="cpu", threads=1, seeds=[0, 1])
d["data"].update(train_subset=600, holdout=100, test_subset=200)
d["student"] = {"name": "resnet8", "kwargs": {"width": 8}}
d["teachers"]["weak"] = {"model": {"name": "tinycnn", "kwargs": {"width": 8}}, "train": {"epochs": 1}}
d["train"].update(epochs=2, batch_size=50, precision="fp32", eval={"every_epochs": 0.5, "batch_size": 200})
d["targets"]["thresholds"] = [20, 25, 30]
open(sys.argv[1], "w").write(yaml.safe_dump(d, sort_keys=False))
EOF
else
  DEV=(--device cuda); OVH=(--batch 512 --precision bf16 --steps 20 --rounds 5 --threads 8); EPOCH=()
  SUITE=suites/cifar10-gpu.yaml
fi
SUITE_NAME=$("$PYTHON" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$SUITE")
echo "gpu_check: OUT=$OUT steps=$STEPS tiny=$TINY data root=$W2S_DATA_ROOT python=$PYTHON"

if has device; then
  step device
  {
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
      --format=csv
    "$PYTHON" -c "
import os, torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())
print('device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu only',
      '| cpus', os.cpu_count())"
    git rev-parse HEAD 2>/dev/null && git status --porcelain | head -20
  } | tee "$OUT/device.txt"
fi

if has overhead; then
  step "overhead: harness vs bare loop, KD cost"
  run overhead "$PYTHON" perf/overhead.py "${DEV[@]}" "${OVH[@]}" --json "$OUT/overhead.json"
fi

if has epoch; then
  step "epoch time: resnet18_cifar on full CIFAR-10"
  run epoch "$PYTHON" perf/epoch_time.py "${DEV[@]}" "${EPOCH[@]}" --json "$OUT/epoch_time.json"
fi

if has suite; then
  step "suite $SUITE"
  run validate "${W2S[@]}" validate "$SUITE"
  run suite "${W2S[@]}" run "$SUITE" --results-dir "$OUT/results"
fi

if has report; then
  step "report"
  run report "${W2S[@]}" report "$OUT/results" --out "$OUT/reports"
fi

if has compile; then
  step "epoch time with torch.compile"
  run compile "$PYTHON" perf/epoch_time.py "${DEV[@]}" "${EPOCH[@]}" --compile --json "$OUT/epoch_time_compiled.json"
fi

step summary
"$PYTHON" - "$OUT" "$SUITE_NAME" <<'EOF' | tee "$OUT/summary.txt"
import json
import sys
from pathlib import Path

out, suite = Path(sys.argv[1]), sys.argv[2]
if (out / "device.txt").exists():
    print((out / "device.txt").read_text().strip())
if (out / "overhead.json").exists():
    o = json.loads((out / "overhead.json").read_text())
    r = {k: o[k]["median_of_rounds"] for k in o if k.endswith(("_over_bare", "_over_baseline"))}
    print(f"overhead ({o['device']}, {o['student']}, batch {o['batch']}, {o['precision']}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
for name in ("epoch_time", "epoch_time_compiled"):
    f = out / f"{name}.json"
    if f.exists():
        e = json.loads(f.read_text())
        print(f"{name}: {e['model']} {e['steady_epoch_s']:.2f} s/epoch, {e['steady_img_per_s']:.0f} img/s "
              f"(epochs: {', '.join(f'{t:.2f}' for t in e['epoch_s'])} s)")
runs = sorted((out / "results" / suite).glob("*/*/manifest.json"))
if runs:
    walls = []
    for m in runs:
        man = json.loads(m.read_text())
        print(f"{m.parent.parent.name[:-1]} {m.parent.name}: {man.get('status')}")
    for f in sorted((out / "results" / suite / "runs").glob("*/metrics.jsonl")):
        last = [json.loads(x) for x in f.read_text().splitlines() if x.strip()][-1]
        walls.append(last["train_wall_s"] + last["eval_wall_s"])
    print(f"student runs: {sum(walls):.0f} s of train + eval wall in all")
rep = out / "reports" / suite
if rep.exists():
    print(f"report: {rep} ({', '.join(sorted(p.name for p in rep.iterdir()))})")
EOF
echo "gpu_check finished in ${SECONDS} s; failed steps: ${FAILED[*]:-none}"
[ ${#FAILED[@]} -eq 0 ]
