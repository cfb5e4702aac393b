"""nox sessions: `nox -s tests`, `nox -s lint`, `nox -s smoke` (CIFAR-10 subsets; needs
W2S_DATA_ROOT pointing at a folder holding cifar10/)."""

import os

import nox

nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session):
    session.install("-e", ".[test,trackers]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session):
    session.install("ruff", "import-linter")
    session.run("ruff", "check", "benchmark", "tests", "perf", "noxfile.py")
    # the layering of DESIGN.md, as contracts in pyproject.toml; reads the source from the
    # working directory, so the package itself need not be installed
    session.run("lint-imports")


@nox.session
def smoke(session):
    session.install("-e", ".")
    if not os.environ.get("W2S_DATA_ROOT"):
        session.error("set W2S_DATA_ROOT to the folder holding cifar10/ (e.g. ../shared/datasets)")
    out = session.create_tmp()
    session.run("w2s-bench", "run", "suites/smoke.yaml", "--results-dir", f"{out}/results")
    session.run("w2s-bench", "report", f"{out}/results", "--out", f"{out}/reports")
