"""The environment steps of perf/gpu_check.sh, in Python (standard library only, so they run
before the carried wheels are installed):

    python perf/gpu_env.py imports        the harness's third-party imports that fail here
                                          (exit 1 if any), with the versions of those that work;
                                          --carried: only those the carried wheels provide
    python perf/gpu_env.py wheels         the carried wheel folder for this Python
                                          (.gpu/wheels-cpXY), or a message saying how to make it
    python perf/gpu_env.py data WORK      the data root holding CIFAR-10 (printed), unpacking
                                          the carried .gpu/data/cifar10.w2spack.gz into WORK/data
                                          when that is where it is; else a message naming every
                                          place looked at and how to fill one (exit 2)
    python perf/gpu_env.py facts          device facts: GPU, driver, torch / CUDA / cuDNN,
                                          Python, package versions, CPU count

"Third-party imports" are found by reading benchmark/ with `ast`, so a new import is checked
without editing this file; those in gpu_wheels.OPTIONAL (imported lazily by one feature that
the GPU check does not use) are left out.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_wheels import CARRY, OPTIONAL, ROOT, WHEELS, dist_of_import  # noqa: E402

PACK_GZ = CARRY / "data" / "cifar10.w2spack.gz"  # written by perf/gpu_data.sh


# The scripts the check runs besides the package (own modules: the package and these helpers;
# gpu_wheels.py runs here only, and gpu_env.py imports nothing but its constants)
CHECKED = ("perf/overhead.py", "perf/epoch_time.py", "perf/gpu_env.py", "tests/conftest.py",
           "tests/test_gpu.py")
OWN = frozenset({"benchmark", "gpu_env", "gpu_wheels", "conftest"})


def third_party_imports(src: Path, own: frozenset[str] | None = None
                        ) -> dict[str, list[tuple[str, bool]]]:
    """Top-level module -> [(file, lazy)] for every absolute import in `src` (a package folder,
    read recursively, or one file) that is neither the standard library nor one of `own`
    (default: the folder's own package); `lazy` is True for an import inside a function (run
    only when that function is called), False for one at module level (run when the module is
    imported, including under `if`/`try` at module level). Files are named relative to
    `src`'s parent."""
    own = own if own is not None else frozenset({src.stem})
    found: dict[str, list[tuple[str, bool]]] = {}

    def visit(node, lazy, fname):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            for n in names:
                top = n.split(".")[0]
                if top not in own and top not in sys.stdlib_module_names:
                    found.setdefault(top, []).append((fname, lazy))
            visit(child, inner, fname)

    for f in sorted(src.rglob("*.py")) if src.is_dir() else [src]:
        visit(ast.parse(f.read_text(), filename=str(f)), False, str(f.relative_to(src.parent)))
    return found


def checked_imports() -> dict[str, list[tuple[str, bool]]]:
    """third_party_imports of benchmark/ and of the CHECKED scripts (that exist), merged."""
    found = third_party_imports(ROOT / "benchmark", OWN)
    for rel in CHECKED:
        if (ROOT / rel).is_file():
            for mod, where in third_party_imports(ROOT / rel, OWN).items():
                found.setdefault(mod, []).extend((f"{Path(rel).parent}/{f}", lz) for f, lz in where)
    return found


def needed_modules() -> list[str]:
    return sorted(m for m in checked_imports() if m not in OPTIONAL)


def version(module: str) -> str:
    """The installed version of the distribution that provides `module`, else '?'."""
    from importlib import metadata

    try:
        return metadata.version(dist_of_import(module))
    except metadata.PackageNotFoundError:
        return "?"


def cmd_imports(carried_only: bool = False) -> int:
    """Import every needed module (or, quick, only those the carried wheels provide)."""
    if carried_only:
        mods = sorted(m for _, ms, _ in WHEELS.values() for m in ms)
    else:
        mods = needed_modules()
    bad = []
    for m in mods:
        try:
            mod = importlib.import_module(m)
        except Exception as e:  # an old typing_extensions breaks pydantic with AttributeError
            bad.append(m)
            print(f"  {m:<18} MISSING ({type(e).__name__}: {e})")
            continue
        where = Path(getattr(mod, "__file__", "") or "?").parent
        print(f"  {m:<18} {version(m):<14} {where}")
    if bad:
        print(f"gpu_env: cannot import {', '.join(bad)}")
    return 1 if bad else 0


def cmd_wheels() -> int:
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    d = CARRY / f"wheels-{tag}"
    if d.is_dir() and any(d.glob("*.whl")):
        print(d)
        return 0
    have = sorted(p.name for p in CARRY.glob("wheels-cp*")) if CARRY.is_dir() else []
    print(
        f"gpu_env: no wheels for this Python ({sys.version.split()[0]}, {tag}) in {d}"
        + (f" (there are: {', '.join(have)})" if have else "")
        + f".\n  Make them on a machine with network, in the checkout: python perf/gpu_wheels.py "
        f"--python-version {sys.version_info[0]}.{sys.version_info[1]}\n  and carry the folder "
        "along (device tool: carry [\".gpu\"]).",
        file=sys.stderr,
    )
    return 2


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def unpack(gz: Path, out: Path) -> Path:
    """gunzip `gz` to `out` unless `out` is already it; checked against the sha256 that
    perf/gpu_data.sh wrote beside `gz` (a torn transfer fails here, not mid-suite)."""
    want_f = gz.with_name(gz.name[: -len(".gz")] + ".sha256")
    want = want_f.read_text().split()[0] if want_f.is_file() else None
    if out.is_file() and want and sha256(out) == want:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    if want and sha256(tmp) != want:
        tmp.unlink()
        raise SystemExit(f"gpu_env: {gz} unpacks to data whose sha256 is not {want}: "
                         "a torn copy? Make it again with perf/gpu_data.sh")
    os.replace(tmp, out)
    return out


def cmd_data(work: Path) -> int:
    here = str(Path(__file__).resolve().parents[1])  # this checkout, for the harness itself
    if here not in sys.path:
        sys.path.insert(0, here)
    from benchmark.data.paths import cifar_candidates, find_cifar  # torch-free

    env = os.environ.get("W2S_DATA_ROOT")
    if env:
        if find_cifar("cifar10", env):
            print(Path(env).resolve())
            return 0
        c = cifar_candidates("cifar10", env)
        print(f"gpu_env: W2S_DATA_ROOT={env} holds no CIFAR-10: looked for {c['imagefolder']}/"
              f"{{train,test}}, {c['pack']} and {c['torchvision']}", file=sys.stderr)
        return 2
    if find_cifar("cifar10", str(ROOT / "data")):
        print(ROOT / "data")
        return 0
    if PACK_GZ.is_file():
        unpack(PACK_GZ, work / "data" / "cifar10.w2spack")
        print(work / "data")
        return 0
    shared = ROOT.parent / "shared" / "datasets"
    if find_cifar("cifar10", str(shared)):
        print(shared)
        return 0
    print(
        "gpu_env: no CIFAR-10 for the check. Looked at: $W2S_DATA_ROOT (unset); "
        f"{ROOT / 'data'}/cifar10/{{train,test}} or cifar10.w2spack; the carried pack {PACK_GZ}; "
        f"{shared}.\n  On the GPU machine nothing beside the checkout exists (../shared does not "
        "travel), so make the pack here:  perf/gpu_data.sh  (writes .gpu/data/cifar10.w2spack.gz, "
        "~18 MiB)\n  and carry it (device tool: carry [\".gpu\"]), or set W2S_DATA_ROOT to a "
        "folder holding cifar10/.",
        file=sys.stderr,
    )
    return 2


def cmd_facts() -> int:
    import platform

    if shutil.which("nvidia-smi"):
        q = "name,memory.total,driver_version,clocks.max.sm,power.limit"
        r = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv"],
                           capture_output=True, text=True)
        print(r.stdout.strip() or r.stderr.strip())
    import torch

    print(f"python {platform.python_version()} ({sys.executable}) | cpus {os.cpu_count()}")
    print(f"torch {torch.__version__} | cuda {torch.version.cuda} | "
          f"cudnn {torch.backends.cudnn.version()}")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(f"device {p.name} | capability {p.major}.{p.minor} | {p.multi_processor_count} SMs | "
              f"{p.total_memory / 2**30:.1f} GiB | bf16 {torch.cuda.is_bf16_supported()}")
    else:
        print(f"device cpu only ({torch.backends.cpu.get_cpu_capability()})")
    print("packages: " + ", ".join(f"{m} {version(m)}" for m in needed_modules()))
    return 0


def main(argv: list[str]) -> int:
    cmds = {"imports": cmd_imports, "wheels": cmd_wheels, "facts": cmd_facts}
    if argv[:1] == ["data"] and len(argv) == 2:
        return cmd_data(Path(argv[1]))
    if argv == ["imports", "--carried"]:
        return cmd_imports(carried_only=True)
    if len(argv) == 1 and argv[0] in cmds:
        return cmds[argv[0]]()
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
