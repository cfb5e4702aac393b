"""Fetch, here, the wheels the harness needs that the borrowed GPU machine lacks (issue #21).

The GPU machine (CPython 3.12, torch 2.11, no network) has torch, torchvision, timm, numpy,
pandas, matplotlib, pillow, click, rich, pyyaml, scipy and more (GPU_MACHINE below, read off
/work/.library/device/KINDS.md), but not pydantic and its dependencies, pycocotools or
torch-fidelity, which w2s-bench imports. This script puts exactly those wheels (WHEELS below,
pinned, fetched with --no-deps so that it never pulls torch) into a git-ignored folder that
travels with the working tree (`carry: [".gpu"]`); perf/gpu_check.sh installs them offline
into a target directory before anything else.

    python perf/gpu_wheels.py                        # CPython 3.12 -> .gpu/wheels-cp312/
    python perf/gpu_wheels.py --python-version 3.11  # -> .gpu/wheels-cp311/ (the CPU dry run)
    python perf/gpu_wheels.py --size                 # only: what would travel, in MiB

A wheel already in ../shared/gpu-wheels/ (beside the checkout; it does not travel itself) is
copied from there; any other is downloaded from PyPI for manylinux x86-64. Then every wheel's
own requirements (Requires-Dist, extras left out) are checked against this list and the GPU
machine's packages, so a dependency that is missing there is caught here, not on the GPU.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "gpu-wheels"  # ../shared/gpu-wheels relative to the repo
CARRY = ROOT / ".gpu"  # git-ignored; the GPU command names it in `carry`
TRAVEL_LIMIT_MIB = 64  # the device tool's limit on the working tree that travels, per call

# distribution -> (version, import names it provides, why the harness needs it). Versions are
# those `pip install -e .` resolved here when this list was written (pydantic pins its core).
WHEELS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "pydantic": ("2.14.4", ("pydantic",), "the suite schema (benchmark/suite.py)"),
    "pydantic-core": ("2.50.5", ("pydantic_core",), "pydantic's compiled core (pydantic pins it)"),
    "annotated-types": ("0.8.0", ("annotated_types",), "a pydantic dependency"),
    "typing-inspection": ("0.4.5", ("typing_inspection",), "a pydantic dependency"),
    # on the GPU machine too, in an unknown version; pydantic 2.14 needs >= 4.16, so carried
    "typing-extensions": ("4.16.0", ("typing_extensions",), "pydantic needs >= 4.16.0"),
    "pycocotools": ("2.0.11", ("pycocotools",), "detection mAP (benchmark/data/coco.py)"),
    "torch-fidelity": ("0.4.0", ("torch_fidelity",), "FID (benchmark/metrics/fid.py)"),
}

# Third-party imports of benchmark/ that are on no checked path of the GPU check: imported
# inside the one function that needs them (tests/test_gpu_check.py checks both), so no wheel.
OPTIONAL = {
    "submitit": "the SLURM executor (run --executor slurm)",
    "mlflow": "report --mlflow-uri",
    "tensorboard": "report --tensorboard (on the GPU machine anyway)",
}

# Import name -> distribution name where they differ (else: the import name, '_' -> '-').
IMPORT_DIST = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn", "cv2": "opencv-python"}

# The GPU machine's Python packages (KINDS.md, "Python packages already there", read there
# 2026-11-17), normalised names. Its python3 is CPython 3.12.3 with torch 2.11.0+cu130.
GPU_MACHINE = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn
einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio
iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml
markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda
numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip
pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo
pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov
pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests
rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn
sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())

# pip matches manylinux_2_N exactly, so name the common ones (the GPU machine's glibc is newer)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


def normalize(name: str) -> str:
    """PEP 503 name normalisation: runs of '-', '_', '.' become '-', lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_of_import(module: str) -> str:
    """The distribution that provides top-level import `module` (normalised)."""
    for dist, (_, mods, _) in WHEELS.items():
        if module in mods:
            return dist
    return normalize(IMPORT_DIST.get(module, module))


def wheel_name_version(filename: str) -> tuple[str, str]:
    """('pydantic-core', '2.50.5') from 'pydantic_core-2.50.5-cp312-...-x86_64.whl'."""
    parts = filename[: -len(".whl")].split("-")
    return normalize(parts[0]), parts[1]


def wheel_fits(filename: str, python_version: str) -> bool:
    """Whether a wheel installs on CPython `python_version` ('3.12') on manylinux x86-64.

    Tags per PEP 427/425: name-version[-build]-python-abi-platform.whl, each tag possibly a
    '.'-joined set. A pure wheel (py3 / none / any) fits every CPython 3; cpXY with abi cpXY
    fits XY only; cpXY with abi3 (the stable ABI) fits XY and every later 3.x."""
    py, abi, plat = filename[: -len(".whl")].split("-")[-3:]
    want = int(python_version.split(".")[1])
    if plat != "any" and not any(
        p.startswith("manylinux") and p.endswith("_x86_64") for p in plat.split(".")
    ):
        return False
    for tag in py.split("."):
        if tag == "py3" and abi == "none":
            return True
        m = re.fullmatch(r"cp3(\d+)", tag)
        if m is None:
            continue
        minor = int(m.group(1))
        if abi == "abi3" and minor <= want:
            return True
        if abi.split(".")[0] == f"cp3{minor}" and minor == want:
            return True
    return False


def requires(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA (raw, markers included)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    key = "Requires-Dist:"
    return [ln[len(key) :].strip() for ln in text.splitlines() if ln.startswith(key)]


def _packaging():
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.version import Version
    return Requirement, Version


def unmet(reqs: list[str], python_version: str, have: dict[str, str]) -> list[str]:
    """Requirements (no extras, markers evaluated for Linux x86-64 and `python_version`) that
    neither a carried wheel (`have`: normalised name -> version) satisfies nor the GPU machine
    has. For the GPU machine's own packages only presence is known, so versions are not checked."""
    Requirement, Version = _packaging()
    env = {"python_version": python_version, "python_full_version": python_version + ".0",
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "os_name": "posix", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": ""}
    bad = []
    for line in reqs:
        r = Requirement(line)
        if r.marker is not None and not r.marker.evaluate(env):
            continue  # an extra, or another platform / Python
        name = normalize(r.name)
        if name in have:
            if not r.specifier.contains(Version(have[name]), prereleases=True):
                bad.append(f"{line} (carried: {have[name]})")
        elif name not in GPU_MACHINE:
            bad.append(line)
    return bad


def fetch(dest: Path, python_version: str, shared: Path | None = SHARED) -> list[Path]:
    """Every wheel of WHEELS for `python_version` in `dest` (and nothing else there), copied
    from `shared` where it has it, else downloaded."""
    dest.mkdir(parents=True, exist_ok=True)
    got = []
    for dist, (version, _, why) in WHEELS.items():
        fits = lambda f, d=dist, v=version: (  # noqa: E731
            f.endswith(".whl") and wheel_name_version(f) == (d, v) and wheel_fits(f, python_version)
        )
        have = [p for p in dest.iterdir() if fits(p.name)]
        near = []
        if shared is not None and shared.is_dir():
            near = [p for p in shared.glob("*.whl") if fits(p.name)]
        if have:
            src = "already here"
        elif near:
            shutil.copy2(near[0], dest / near[0].name)
            have, src = [dest / near[0].name], f"copied from {shared}"
        else:
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                       "--only-binary=:all:", "--implementation", "cp",
                       "--python-version", python_version, "--dest", tmp, f"{dist}=={version}"]
                for p in PLATFORMS:
                    cmd += ["--platform", p]
                r = subprocess.run(cmd, capture_output=True, text=True)
                found = [p for p in Path(tmp).iterdir() if fits(p.name)]
                if r.returncode != 0 or not found:
                    sys.exit(f"gpu_wheels: could not download {dist}=={version} for CPython "
                             f"{python_version} manylinux x86-64:\n{r.stderr.strip()}")
                shutil.move(str(found[0]), dest / found[0].name)
                have, src = [dest / found[0].name], "downloaded from PyPI"
        print(f"  {have[0].name:<90} {have[0].stat().st_size / 2**20:6.2f} MiB  {src}  ({why})")
        got.append(have[0])
    for p in dest.iterdir():  # two versions of one package would stop the whole install
        if p not in got:
            print(f"  removed {p.name} (not in the list)")
            p.unlink()
    return got


def dir_mib(path: Path) -> float:
    files = path.rglob("*") if path.exists() else []
    return sum(p.stat().st_size for p in files if p.is_file()) / 2**20


def travel_mib() -> tuple[float, float]:
    """(working tree that travels without carry, .gpu) in MiB: tracked files and untracked files
    git does not ignore, as the device tool counts them."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    tree = sum((ROOT / f).stat().st_size for f in out.split("\0") if f and (ROOT / f).is_file())
    return tree / 2**20, dir_mib(CARRY)


def print_size() -> float:
    tree, carry = travel_mib()
    total = tree + carry
    print(f"travels to the GPU machine with carry ['.gpu']: working tree {tree:.1f} MiB + .gpu "
          f"{carry:.1f} MiB = {total:.1f} MiB of the {TRAVEL_LIMIT_MIB} MiB limit")
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--python-version", default="3.12", help="target CPython X.Y (default 3.12)")
    p.add_argument("--dest", type=Path, help="default: .gpu/wheels-cpXY")
    p.add_argument("--no-shared", action="store_true", help=f"download all, ignore {SHARED}")
    p.add_argument("--size", action="store_true", help="only print what would travel")
    a = p.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", a.python_version):
        p.error(f"--python-version wants X.Y, e.g. 3.12, not {a.python_version!r}")
    if a.size:
        return 0 if print_size() < TRAVEL_LIMIT_MIB else 1
    dest = a.dest or CARRY / f"wheels-cp{a.python_version.replace('.', '')}"
    print(f"gpu_wheels: CPython {a.python_version}, manylinux x86-64 -> {dest}")
    wheels = fetch(dest, a.python_version, None if a.no_shared else SHARED)
    have = {wheel_name_version(w.name)[0]: wheel_name_version(w.name)[1] for w in wheels}
    problems = [
        f"{w.name}: needs {r}" for w in wheels for r in unmet(requires(w), a.python_version, have)
    ]
    for line in problems:
        print(f"  UNMET {line}")
    mib = dir_mib(dest)
    print(f"{len(wheels)} wheels, {mib:.2f} MiB")
    total = print_size()
    if problems:
        print("gpu_wheels: the GPU machine would miss the requirements above: add them to WHEELS")
        return 1
    if total >= TRAVEL_LIMIT_MIB:
        print("gpu_wheels: too much would travel; carry less (the limit is per call)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
