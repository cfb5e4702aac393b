"""The GPU check's preparation, without a GPU or a network (issue #21): the carried wheel list
covers every third-party import of benchmark/ that the GPU machine lacks, its pure helpers
(wheel tags, requirement closure, the import scan, the data unpacking) give hand-computed
answers, and the scripts parse and reject bad arguments with a message."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "perf"))

import gpu_env  # noqa: E402
import gpu_wheels  # noqa: E402


# ------------------------------------------------------------------ the wheel list
def test_wheels_cover_every_import_the_gpu_machine_lacks():
    imports = gpu_env.checked_imports()
    assert {"torch", "pydantic", "yaml", "rich", "pytest"} <= set(imports)  # package + scripts
    assert "benchmark" not in imports and "gpu_wheels" not in imports
    missing = {}
    for mod, where in imports.items():
        dist = gpu_wheels.dist_of_import(mod)
        if dist in gpu_wheels.GPU_MACHINE or dist in gpu_wheels.WHEELS:
            continue
        if mod in gpu_wheels.OPTIONAL:
            # an optional feature's package must stay out of every module-level import, or
            # importing that module on the GPU machine would fail
            eager = [f for f, lazy in where if not lazy]
            assert not eager, f"{mod} is optional but imported at module level in {eager}"
            continue
        missing[mod] = sorted({f for f, _ in where})
    assert not missing, f"add wheels to perf/gpu_wheels.py WHEELS for {missing}"


def test_carried_packages_are_the_ones_the_gpu_machine_lacks():
    for dist in ("pydantic", "pydantic-core", "annotated-types", "typing-inspection",
                 "pycocotools", "torch-fidelity"):
        assert dist in gpu_wheels.WHEELS and dist not in gpu_wheels.GPU_MACHINE
    # the GPU machine's torch stack is never carried (--no-deps keeps it out of downloads too)
    assert not {"torch", "torchvision", "timm", "numpy"} & set(gpu_wheels.WHEELS)


def test_wheel_list_is_closed_under_its_own_requirements():
    """Each carried package's requirements are carried or on the GPU machine. Read from the
    installed metadata of the same version (the wheels themselves are not in a fresh clone)."""
    have = {d: v for d, (v, _, _) in gpu_wheels.WHEELS.items()}
    checked = 0
    for dist, (version, _, _) in gpu_wheels.WHEELS.items():
        try:
            if importlib.metadata.version(dist) != version:
                continue  # another version installed here: its requirements may differ
        except importlib.metadata.PackageNotFoundError:
            continue
        reqs = importlib.metadata.requires(dist) or []
        assert gpu_wheels.unmet(reqs, "3.12", have) == [], dist
        checked += 1
    if checked == 0:
        pytest.skip("none of the pinned versions is installed here")


# ---------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    ("filename", "py", "fits"),
    [
        ("pydantic-2.14.4-py3-none-any.whl", "3.12", True),
        ("six-1.17.0-py2.py3-none-any.whl", "3.11", True),
        ("pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
         "3.12", True),
        ("pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_x86_64.whl", "3.11", False),
        ("pydantic_core-2.50.5-cp311-cp311-manylinux_2_17_x86_64.whl", "3.12", False),
        ("pycocotools-2.0.11-cp312-abi3-manylinux2014_x86_64.manylinux_2_28_x86_64.whl",
         "3.13", True),
        ("pycocotools-2.0.11-cp312-abi3-manylinux2014_x86_64.whl", "3.11", False),
        ("pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_aarch64.whl", "3.12", False),
        ("pydantic_core-2.50.5-cp312-cp312-win_amd64.whl", "3.12", False),
        ("pydantic_core-2.50.5-cp313-cp313t-manylinux_2_17_x86_64.whl", "3.13", False),
        ("pkg-1.0-1build-cp312-cp312-manylinux_2_17_x86_64.whl", "3.12", True),
    ],
)
def test_wheel_fits(filename, py, fits):
    assert gpu_wheels.wheel_fits(filename, py) is fits


def test_names():
    assert gpu_wheels.normalize("Typing_Extensions") == "typing-extensions"
    assert gpu_wheels.normalize("zope.interface") == "zope-interface"
    assert gpu_wheels.wheel_name_version(
        "pydantic_core-2.50.5-cp312-cp312-manylinux2014_x86_64.whl"
    ) == ("pydantic-core", "2.50.5")
    assert gpu_wheels.dist_of_import("PIL") == "pillow"
    assert gpu_wheels.dist_of_import("yaml") == "pyyaml"
    assert gpu_wheels.dist_of_import("pydantic_core") == "pydantic-core"
    assert gpu_wheels.dist_of_import("torch_fidelity") == "torch-fidelity"


def test_unmet_requirements():
    have = {"pydantic-core": "2.50.5", "typing-extensions": "4.15.0"}
    reqs = [
        "pydantic-core==2.50.5",  # carried, right version
        "typing-extensions>=4.16.0",  # carried, too old
        "numpy",  # on the GPU machine
        "email-validator>=2.0.0; extra == 'email'",  # an extra: not installed
        "tzdata; platform_system == 'Windows'",  # another platform
        "exceptiongroup; python_version < '3.11'",  # another Python
        "left-pad>=1",  # nowhere
    ]
    assert gpu_wheels.unmet(reqs, "3.12", have) == [
        "typing-extensions>=4.16.0 (carried: 4.15.0)",
        "left-pad>=1",
    ]
    assert gpu_wheels.unmet(["exceptiongroup; python_version < '3.11'"], "3.10", {}) == [
        "exceptiongroup; python_version < '3.11'"
    ]


def test_third_party_imports_marks_lazy_ones(tmp_path):
    pkg = tmp_path / "mypkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import os\nimport numpy as np\nfrom . import sub\n")
    (pkg / "sub" / "__init__.py").write_text(
        "from __future__ import annotations\n"
        "from mypkg.sub import x\n"  # its own package
        "try:\n    import yaml.constructor\nexcept ImportError:\n    yaml = None\n"
        "class A:\n    import pandas\n"  # a class body runs at import
        "def f():\n    import numpy\n    from torch_fidelity import m\n"
        "g = lambda: __import__('x')\n"
    )
    assert gpu_env.third_party_imports(pkg) == {
        "numpy": [("mypkg/__init__.py", False), ("mypkg/sub/__init__.py", True)],
        "yaml": [("mypkg/sub/__init__.py", False)],
        "pandas": [("mypkg/sub/__init__.py", False)],
        "torch_fidelity": [("mypkg/sub/__init__.py", True)],
    }


# ------------------------------------------------------------------------- data
def _pack_gz(tmp_path, payload: bytes, sha: str | None = None) -> Path:
    gz = tmp_path / "repo" / ".gpu" / "data" / "cifar10.w2spack.gz"
    gz.parent.mkdir(parents=True)
    gz.write_bytes(gzip.compress(payload))
    (gz.parent / "cifar10.w2spack.sha256").write_text(
        (sha or hashlib.sha256(payload).hexdigest()) + "\n"
    )
    return gz


def _as_repo(monkeypatch, tmp_path, gz: Path | None):
    monkeypatch.delenv("W2S_DATA_ROOT", raising=False)
    monkeypatch.setattr(gpu_env, "ROOT", tmp_path / "repo")
    monkeypatch.setattr(gpu_env, "PACK_GZ", gz or tmp_path / "repo" / ".gpu" / "none.gz")


def test_data_unpacks_the_carried_pack(tmp_path, monkeypatch, capsys):
    payload = b"not really an npz, but bytes to carry" * 100
    _as_repo(monkeypatch, tmp_path, _pack_gz(tmp_path, payload))
    assert gpu_env.cmd_data(tmp_path / "work") == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "work" / "data")
    assert (tmp_path / "work" / "data" / "cifar10.w2spack").read_bytes() == payload
    assert gpu_env.cmd_data(tmp_path / "work") == 0  # a second call keeps the checked copy


def test_data_refuses_a_torn_pack(tmp_path, monkeypatch):
    _as_repo(monkeypatch, tmp_path, _pack_gz(tmp_path, b"abc", sha="0" * 64))
    with pytest.raises(SystemExit, match="sha256"):
        gpu_env.cmd_data(tmp_path / "work")
    assert not (tmp_path / "work" / "data" / "cifar10.w2spack").exists()


def test_data_missing_says_what_is_needed(tmp_path, monkeypatch, capsys):
    _as_repo(monkeypatch, tmp_path, None)
    assert gpu_env.cmd_data(tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert "perf/gpu_data.sh" in err and 'carry [".gpu"]' in err and "does not" in err
    monkeypatch.setenv("W2S_DATA_ROOT", str(tmp_path / "nowhere"))
    assert gpu_env.cmd_data(tmp_path / "work") == 2
    assert "holds no CIFAR-10" in capsys.readouterr().err


def test_wheels_missing_says_how_to_make_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_env, "CARRY", tmp_path / ".gpu")
    assert gpu_env.cmd_wheels() == 2
    v = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"python perf/gpu_wheels.py --python-version {v}" in capsys.readouterr().err
    d = tmp_path / ".gpu" / f"wheels-cp{v.replace('.', '')}"
    d.mkdir(parents=True)
    (d / "x-1-py3-none-any.whl").write_bytes(b"")
    assert gpu_env.cmd_wheels() == 0
    assert capsys.readouterr().out.strip() == str(d)


# ---------------------------------------------------------------------- scripts
@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_data.sh"])
def test_scripts_parse(script):
    r = subprocess.run(["bash", "-n", str(ROOT / "perf" / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["part1", "--bogus"], "unknown argument --bogus"),
        (["part2", "--steps", "device,warp"], "unknown step warp"),
        (["--tiny", "--budget", "soon"], "--budget wants whole seconds"),
    ],
)
def test_gpu_check_rejects_bad_arguments(tmp_path, args, says):
    r = subprocess.run(["bash", str(ROOT / "perf" / "gpu_check.sh"), *args, "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and says in r.stderr
    assert not list(tmp_path.iterdir())  # stopped before writing anything
