#!/usr/bin/env bash
# The prepared GPU check (issues #8, #21), for a GPU machine lent for ~15 minutes in all (its
# start included) that starts bare (CPython 3.12 with torch, no pydantic, pycocotools or
# torch-fidelity) and has no network. Two calls, on the same warm machine, one right after
# the other (it stays warm ~30 s):
#
#   perf/gpu_check.sh part1   (~4.5 min) device facts, harness overhead, epoch timing, then
#                             runs the suites with the time left: first
#                             suites/cifar10-airbench-gpu.yaml (issue 20's gate 3: airbench94's
#                             recipe, 5 paired seeds), then suites/cifar10-gpu.yaml
#   perf/gpu_check.sh part2   (<= 7.5 min) finishes the suites (complete runs are skipped; a run
#                             cut short resumes from its checkpoint), their reports, then with the
#                             time left the GPU tests and epoch timing under torch.compile
#   perf/gpu_check.sh --tiny  a CPU dry run of both (small nets, a derived suite, a few hundred
#                             images, no compile): checks the plumbing, not the speed
#
# Options: --out DIR (default: $OUT, else WORK/out); --steps LIST (a comma-separated subset of
# device,overhead,epoch,suite,report,gputest,compile, run in this order); --suite FILE
# (repeatable; default suites/cifar10-airbench-gpu.yaml and suites/cifar10-gpu.yaml); --budget
# S: seconds the call may take (default part1 270, part2 450, both 530, --tiny 1500); a step
# that would run past it is cut short and the rest skipped, so that what was done comes back.
# `perf/gpu_check.sh DIR [--steps LIST] [--tiny]` (the older form) means --out DIR, both parts.
#
# Before any step, with no network:
#  1. Python: $PYTHON, else .venv/bin/python, else python3. If the harness's imports fail, the
#     wheels carried in .gpu/wheels-cpXY (made here by `python perf/gpu_wheels.py`) are
#     installed offline into WORK/site (pip --no-index --no-deps --target), which goes on
#     PYTHONPATH with this checkout: no `pip install -e .`, which would try to resolve torch.
#  2. Data: CIFAR-10 from $W2S_DATA_ROOT if set; else ./data; else the carried
#     .gpu/data/cifar10.w2spack.gz (made here by perf/gpu_data.sh), unpacked into WORK/data;
#     else ../shared/datasets. Nothing beside the checkout travels to the GPU machine.
#  So the device tool's call carries [".gpu"] (~24 MiB with the data; 36 MiB with the tree).
#
# WORK (default ${TMPDIR:-/tmp}/w2s-gpu-check, or W2S_GPU_WORK) keeps the installed wheels and
# the decoded-image cache between the two calls, and the checkout's results/SUITE and
# reports/SUITE (ignored paths) stay there too (--tiny: WORK/results, WORK/reports). OUT gets 8
# plain files at most (the device tool's limit): PART.log (everything printed), summary-PART.txt,
# device.txt, overhead.json, epoch_time.json, epoch_time_compiled.json and, from part2,
# results-SUITE.tar.gz (no checkpoints) and reports-SUITE.tar.gz for each suite (`tar -xzf` it
# in the checkout to get reports/SUITE/); part2 writes at most 7 (two suites).
# The summary prints each airbench run's train + eval seconds against gate 3's 7.66 s (2x the
# published 3.83 s).
set -uo pipefail

usage() { sed -n '2,23p' "$0" >&2; exit 2; }
PART=all STEPS= TINY=0 OUTDIR=${OUT:-} BUDGET= SUITES=()
if [ $# -ge 1 ] && [[ "$1" != -* ]]; then
  case "$1" in
    part1) PART=part1 ;;
    part2) PART=part2 ;;
    all) PART=all ;;
    *) OUTDIR=$1 ;;  # the older form: perf/gpu_check.sh OUT [...]
  esac
  shift
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=1 ;;
    --steps) STEPS=${2:?--steps needs a list}; shift ;;
    --out) OUTDIR=${2:?--out needs a folder}; shift ;;
    --suite) SUITES+=("${2:?--suite needs a file}"); shift ;;
    --budget) BUDGET=${2:?--budget needs seconds}; shift ;;
    *) echo "gpu_check: unknown argument $1" >&2; usage ;;
  esac
  shift
done
STEPS_GIVEN=$STEPS
case "$PART" in
  part1) STEPS=${STEPS:-device,overhead,epoch,suite} ;;
  part2) STEPS=${STEPS:-suite,report,gputest,compile} ;;
  *) STEPS=${STEPS:-device,overhead,epoch,suite,report,gputest,compile} ;;
esac
# --tiny leaves compile out unless asked for: inductor's C++ build takes minutes on a CPU, and
# the step differs from `epoch` only by --compile
if [ $TINY = 1 ] && [ -z "$STEPS_GIVEN" ]; then STEPS=${STEPS%,compile}; fi
for s in ${STEPS//,/ }; do
  case "$s" in device|overhead|epoch|gputest|compile|suite|report) ;;
    *) echo "gpu_check: unknown step $s" >&2; usage ;; esac
done
# part1 + part2 = 720 s, + ~2 min to start the machine and copy the tree: within 15 minutes
case "$TINY$PART" in 1*) DEFAULT=1500 ;; 0part1) DEFAULT=270 ;; 0part2) DEFAULT=450 ;; *) DEFAULT=530 ;; esac
BUDGET=${BUDGET:-$DEFAULT}
[[ "$BUDGET" =~ ^[0-9]+$ ]] || { echo "gpu_check: --budget wants whole seconds" >&2; exit 2; }

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
WORK=${W2S_GPU_WORK:-${TMPDIR:-/tmp}/w2s-gpu-check$([ $TINY = 1 ] && echo -tiny)}
OUTDIR=$(realpath -m "${OUTDIR:-$WORK/out}")
mkdir -p "$OUTDIR" "$WORK" || exit 2
LOG=$PART; [ $TINY = 1 ] && LOG=$PART-tiny
exec > >(tee "$OUTDIR/$LOG.log") 2>&1
TEE=$!
# at exit, let tee write the last lines to OUT before the device tool collects it
trap 'rc=$?; exec >&- 2>&-; wait "$TEE" 2>/dev/null; exit $rc' EXIT
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# decoded images (~180 MB for CIFAR-10) are cached in WORK, outside OUT, and kept for part2
export W2S_CACHE="${W2S_CACHE:-$WORK/cache}"
echo "gpu_check $PART: steps=$STEPS tiny=$TINY out=$OUTDIR work=$WORK budget=${BUDGET}s python=$PYTHON ($(date -u +%FT%TZ))"

# -------------------------------------------------------------- 1. Python and packages
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "gpu_check: $PYTHON is not a Python >= 3.10; set PYTHON" >&2; exit 2
fi
if "$PYTHON" perf/gpu_env.py imports --carried >"$WORK/imports.txt" 2>&1; then
  echo "packages: the carried packages import already (no wheels installed)"
else
  WHEELS=$("$PYTHON" perf/gpu_env.py wheels) || exit 2
  SITE=$WORK/site
  stamp=$(cd "$WHEELS" && ls -1 ./*.whl | sort | sha256sum | cut -c1-16)
  if [ "$(cat "$SITE/.w2s-wheels" 2>/dev/null)" != "$stamp" ]; then
    t0=$SECONDS
    rm -rf "$SITE"
    # offline: no index, no config (its find-links / extra indexes), no dependency resolution
    if ! env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --disable-pip-version-check --target "$SITE" "$WHEELS"/*.whl; then
      echo "gpu_check: the offline install of $WHEELS failed (above)" >&2; exit 2
    fi
    echo "$stamp" > "$SITE/.w2s-wheels"
    echo "packages: installed $(ls "$WHEELS" | wc -l) wheels from $WHEELS into $SITE in $((SECONDS - t0)) s"
  else
    echo "packages: wheels from $WHEELS already installed in $SITE"
  fi
  export PYTHONPATH="$ROOT:$SITE${PYTHONPATH#"$ROOT"}"
fi
if ! "$PYTHON" perf/gpu_env.py imports; then  # every third-party import of benchmark/
  echo "gpu_check: a package the harness imports fails to import (above); one the GPU machine" \
    "lacks goes into WHEELS in perf/gpu_wheels.py" >&2
  exit 2
fi

# --------------------------------------------------------------------------- 2. data
W2S_DATA_ROOT=$("$PYTHON" perf/gpu_env.py data "$WORK") || exit 2
export W2S_DATA_ROOT
echo "data root: $W2S_DATA_ROOT ($(ls "$W2S_DATA_ROOT" | tr '\n' ' '))"

# -------------------------------------------------------------------------- 3. steps
W2S=("$PYTHON" -m benchmark.cli)
FAILED=()
has() { [[ ",$STEPS," == *",$1,"* ]]; }
left() { echo $((BUDGET - SECONDS)); }
step() { echo; echo "== $1 ($(date +%T), ${SECONDS} s into the call, $(left) s left)"; }
run() {  # run NAME RESERVE CMD...: at most (time left - RESERVE) s; keep going after a failure
  local name=$1 reserve=$2; shift 2
  local t0=$SECONDS lim=$(( $(left) - reserve )) rc
  if [ "$lim" -lt 20 ]; then
    echo "-- $name: SKIPPED (${lim} s left before the budget)"; FAILED+=("$name(skipped)"); return 125
  fi
  timeout --signal=TERM --kill-after=30 "$lim" "$@"; rc=$?
  if [ $rc = 0 ]; then echo "-- $name: ok in $((SECONDS - t0)) s"
  elif [ $rc = 124 ]; then echo "-- $name: CUT SHORT at the budget after $((SECONDS - t0)) s"; FAILED+=("$name(cut)")
  else echo "-- $name: FAILED (exit $rc) after $((SECONDS - t0)) s"; FAILED+=("$name"); fi
  return $rc
}

# results/ and reports/ of this checkout, as a user's `w2s-bench run SUITE && w2s-bench report
# results/SUITE` writes them (so the report names those paths); --tiny keeps its own in WORK
BASE=. RESD=results REPD=reports
if [ $TINY = 1 ]; then
  BASE=$WORK RESD=$WORK/results REPD=$WORK/reports
  DEV=(--device cpu); OVH=(--tiny --threads 1); EPOCH=(--tiny)
  # both GPU suites narrowed to a few hundred images and small nets: the same options, one
  # derivation (the shared edits, then each suite's own)
  TINY_SUITE="$WORK/cifar10-gpu-tiny.yaml" TINY_AIRBENCH="$WORK/cifar10-airbench-gpu-tiny.yaml"
  "$PYTHON" - "$TINY_SUITE" "$TINY_AIRBENCH" <<'EOF' || exit 1
import sys

import yaml


def derive(src, student, weak, batch_size):
    d = yaml.safe_load(open(src))
    d.update(name=d["name"] + "-tiny", device="cpu", threads=1, seeds=[0, 1])
    d["data"].update(train_subset=600, holdout=100, test_subset=200)
    d["student"] = student
    d["teachers"]["weak"] = {"model": weak, "train": {"epochs": 1}}
    d["train"].update(epochs=2, batch_size=batch_size, precision="fp32",
                      eval={"every_epochs": 0.5, "batch_size": 200})
    d["targets"]["thresholds"] = [20, 25, 30]
    return d


d = derive("suites/cifar10-gpu.yaml", {"name": "resnet8", "kwargs": {"width": 8}},
           {"name": "tinycnn", "kwargs": {"width": 8}}, 50)
open(sys.argv[1], "w").write(yaml.safe_dump(d, sort_keys=False))
d = derive("suites/cifar10-airbench-gpu.yaml", {"name": "airbench94", "kwargs": {"widths": [16, 32, 32]}},
           {"name": "airbench94", "kwargs": {"widths": [8, 16, 16]}}, 100)
d["task_options"]["recipe"].update(lookahead={"start_epoch": 1, "every_steps": 2},
                                   freeze_after={"whiten.bias": 1}, data_init={"images": 200})
d["task_options"]["eval"]["test_subset"] = 100
open(sys.argv[2], "w").write(yaml.safe_dump(d, sort_keys=False))
EOF
  [ ${#SUITES[@]} -eq 0 ] && SUITES=("$TINY_AIRBENCH" "$TINY_SUITE")
else
  DEV=(--device cuda); OVH=(--batch 512 --precision bf16 --steps 20 --rounds 5 --threads 8); EPOCH=()
  [ ${#SUITES[@]} -eq 0 ] && SUITES=(suites/cifar10-airbench-gpu.yaml suites/cifar10-gpu.yaml)
fi

if has device; then
  step device
  { date -u +"%Y-%m-%dT%H:%M:%SZ"; "$PYTHON" perf/gpu_env.py facts
    git rev-parse HEAD 2>/dev/null && git status --porcelain 2>/dev/null | head -20 \
      || echo "git: no repository here (note the commit the tree was sent from)"
  } | tee "$OUTDIR/device.txt"
fi
if has overhead; then
  step "overhead: harness vs bare loop, KD cost"
  run overhead 60 "$PYTHON" perf/overhead.py "${DEV[@]}" "${OVH[@]}" --json "$OUTDIR/overhead.json"
fi
if has epoch; then
  step "epoch time: resnet18_cifar on full CIFAR-10"
  run epoch 60 "$PYTHON" perf/epoch_time.py "${DEV[@]}" "${EPOCH[@]}" --json "$OUTDIR/epoch_time.json"
fi
NAMES=()
for SUITE in "${SUITES[@]}"; do
  NAMES+=("$("$PYTHON" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$SUITE")") || exit 2
done
if has suite; then
  for SUITE in "${SUITES[@]}"; do
    step "suite $SUITE"
    run validate 0 "${W2S[@]}" validate "$SUITE"
    # part2 keeps 45 s back for the report and the archives; a run cut short (SIGTERM: marked
    # failed, its checkpoint kept) resumes on the next call
    run suite "$([ "$PART" = part1 ] && echo 10 || echo 45)" \
      "${W2S[@]}" run "$SUITE" "${DEV[@]}" --results-dir "$RESD"
    rc=$?
    if [ "$PART" = part1 ] && { [ $rc = 124 ] || [ $rc = 125 ]; }; then  # part1 only starts it
      unset 'FAILED[-1]'; echo "   (part2 finishes the suite: run it next, on the same warm machine)"
    fi
  done
fi
if has report; then
  step report
  DIRS=(); for n in "${NAMES[@]}"; do [ -d "$RESD/$n" ] && DIRS+=("$RESD/$n"); done
  if [ ${#DIRS[@]} -eq 0 ]; then echo "-- report: no results under $RESD"; FAILED+=(report)
  else run report 5 "${W2S[@]}" report "${DIRS[@]}" --out "$REPD"; fi
  if [ $? = 3 ]; then  # exit 3: a baseline health check failed; the reports are written
    unset 'FAILED[-1]'; echo "   (exit 3 is the baseline health check's verdict, above: reports written)"
  fi
  for n in "${NAMES[@]}"; do
    [ -d "$BASE/results/$n" ] && tar -C "$BASE" -czf "$OUTDIR/results-$n.tar.gz" --exclude=checkpoints \
      --exclude=lock "results/$n"
    [ -d "$BASE/reports/$n" ] && tar -C "$BASE" -czf "$OUTDIR/reports-$n.tar.gz" "reports/$n"
  done
  ls -l "$OUTDIR"/*.tar.gz 2>/dev/null
fi
if has gputest; then
  step "GPU tests (tests/test_gpu.py: device batches = CPU batches, bf16 + compile step learns)"
  run gputest 0 "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py
fi
if has compile; then
  step "epoch time with torch.compile"
  run compile 10 "$PYTHON" perf/epoch_time.py "${DEV[@]}" "${EPOCH[@]}" --compile --json "$OUTDIR/epoch_time_compiled.json"
fi

step summary
"$PYTHON" - "$OUTDIR" "$BASE" "${NAMES[@]}" <<'EOF' | tee "$OUTDIR/summary-$LOG.txt"
import json
import sys
from pathlib import Path

out, base, suites = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
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
for suite in suites:
    res = base / "results" / suite
    walls = []
    for m in sorted(res.glob("teachers/*/manifest.json")) + sorted(res.glob("runs/*/manifest.json")):
        man = json.loads(m.read_text())
        print(f"{suite} {m.parent.parent.name[:-1]} {m.parent.name}: {man.get('status')}")
    for f in sorted(res.glob("runs/*/metrics.jsonl")):
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        if rows:
            walls.append(rows[-1]["train_wall_s"] + rows[-1]["eval_wall_s"])
    if walls:
        print(f"{suite}: {len(walls)} student runs, {sum(walls):.0f} s of train + eval wall in all")
    if "airbench" in suite and walls:
        # issue 20, gate 3: a whole run, evaluations included, within 2x airbench94's 3.83 s
        med = sorted(walls)[len(walls) // 2]
        print(f"{suite} gate 3: train + eval seconds per run " + ", ".join(f"{w:.2f}" for w in walls)
              + f"; median {med:.2f} s vs 7.66 s (2 x 3.83): "
              + ("(a --tiny dry run: no verdict)" if suite.endswith("-tiny") else "met" if med <= 7.66 else "NOT met"))
    rep = base / "reports" / suite
    if rep.exists():
        print(f"report: {rep} ({', '.join(sorted(p.name for p in rep.iterdir()))})")
EOF
echo "gpu_check $PART finished in ${SECONDS} s; failed steps: ${FAILED[*]:-none}"
[ ${#FAILED[@]} -eq 0 ]
