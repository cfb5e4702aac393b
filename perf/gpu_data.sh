#!/usr/bin/env bash
# Make, here, the CIFAR-10 data that perf/gpu_check.sh reads on the GPU machine (issue #21).
#
#   perf/gpu_data.sh [DATA_ROOT]     DATA_ROOT: default $W2S_DATA_ROOT, else ../shared/datasets
#
# The GPU machine has no dataset and no network, and ../shared beside the checkout does not
# travel with the working tree. So pack CIFAR-10 into one file (`w2s-bench pack`: the JPEG
# bytes as they are, so the same pixels, labels and splits as the ImageFolder copy; 55 MiB)
# and gzip it: the 60,000 JPEG headers are identical and compress away (~18 MiB), which keeps
# the working tree + wheels + data well under the device tool's 64 MiB per call. Written to
# .gpu/data/cifar10.w2spack.gz (git-ignored; carry [".gpu"]) with the pack's sha256 beside it;
# gpu_check.sh unpacks and checks it there before anything is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-${W2S_DATA_ROOT:-../shared/datasets}}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p .gpu/data
pack=.gpu/data/cifar10.w2spack
rm -f "$pack" "$pack.gz" "$pack.sha256"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m benchmark.cli pack cifar10 --out "$pack" \
  --data-root "$SRC"
sha256sum "$pack" | cut -d' ' -f1 > "$pack.sha256"
gzip -9 -n "$pack"   # -n: no name or time stored, so the same data gives the same file
echo "wrote $pack.gz: $(du -m --apparent-size "$pack.gz" | cut -f1) MiB (sha256 of the pack: $(cat "$pack.sha256"))"
"$PYTHON" perf/gpu_wheels.py --size
