"""User plugins (issue 19): a package adds a loss and a switch rule through an entry point in
the `w2s_bench.plugins` group; they are validated like built-ins (options models, YAML paths),
listed by `w2s-bench ls` with their package, and run. examples/plugin/ is installed for real
(pip, offline, into a temporary --target) so that entry-point discovery is what is tested."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, cli_cmd, tiny_suite_dict
from pydantic import BaseModel, ConfigDict, Field

from benchmark import registry
from benchmark.errors import SuiteError
from benchmark.registry import LOSSES, MODELS, SWITCHES, load_plugins, plugin_problems
from benchmark.suite import validate_dict

EXAMPLE = ROOT / "examples" / "plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """examples/plugin installed with pip into a fresh folder: no network, no build isolation
    (the test environment's setuptools builds it), nothing written into the checkout."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = shutil.copytree(EXAMPLE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--disable-pip-version-check", "--target", str(tmp / "site"), str(src)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"installing examples/plugin failed (setuptools>=70.1 builds it):\n{r.stderr}"
    return tmp / "site"


@pytest.fixture
def env_with(cli_env):
    def make(*paths: Path) -> dict:
        return {**cli_env, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(ROOT)])}

    return make


def _cli(env: dict, cwd: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_example_plugin_is_listed_validated_without_torch_and_runs(plugin_site, env_with, tmp_path):
    env = env_with(plugin_site)
    r = _cli(env, tmp_path, "ls")
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.startswith("  ")}
    assert "(from w2s-plugin-example)" in lines["logit_mse"] and "options: scale, center" in lines["logit_mse"]
    assert "(from w2s-plugin-example)" in lines["plateau"] and "options: patience, min_delta" in lines["plateau"]
    assert "w2s-plugin-example" in lines["example"] and "switch rule plateau" in lines["example"]

    suite = EXAMPLE / "suite.yaml"
    r = _cli(env, tmp_path, "validate", suite)
    assert r.returncode == 0, r.stderr
    code = ("import sys; from benchmark.suite import load_suite; from benchmark.registry import SWITCHES; "
            f"load_suite({str(suite)!r}); assert SWITCHES['plateau'].origin == 'w2s-plugin-example'; "
            "heavy = [m for m in ('torch', 'timm', 'torchvision') if m in sys.modules]; "
            "sys.exit(f'imported {heavy}' if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    r = _cli(env, tmp_path, "run", suite, "--results-dir", tmp_path / "results")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3/3 complete" in r.stdout + r.stderr
    runs = tmp_path / "results" / "plugin-example" / "runs"
    (run,) = [d for d in runs.iterdir() if d.name.startswith("plateau-")]
    spec = json.loads((run / "spec.json").read_text())
    assert spec["distill"]["loss"] == "logit_mse" and spec["distill"]["kwargs"] == {"scale": 0.5}
    assert spec["distill"]["switch"] == {"plateau": {"patience": 2, "min_delta": 2.0}}  # defaults resolved
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    events = [json.loads(ln) for ln in (run / "events.jsonl").read_text().splitlines()]
    offs = [e for e in events if e["event"] == "switch_off"]
    assert len(offs) == 1 and "did not improve" in offs[0]["reason"] and "for 2 evaluation(s)" in offs[0]["reason"]
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kd_active"] for r in rows) and not rows[-1]["kd_active"]  # on, then switched off


def test_plugin_option_typos_are_validate_errors_with_their_yaml_path(plugin_site, env_with, tmp_path):
    d = yaml.safe_load((EXAMPLE / "suite.yaml").read_text())
    d["arms"]["plateau"] = {"distill": {"switch": {"plateau": {"patince": 2}}, "kwargs": {"scael": 1.0}}}
    d["arms"]["slow"] = {"distill": {"switch": {"plateau": {"patience": 0}}}}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(d))
    r = _cli(env_with(plugin_site), tmp_path, "validate", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert ("arms.plateau.distill.switch.plateau.patince: switch rule 'plateau' (from w2s-plugin-example) "
            "has no option 'patince' (its options: patience, min_delta)") in r.stderr
    assert ("arms.plateau.distill.kwargs.scael: loss 'logit_mse' (from w2s-plugin-example) has no option "
            "'scael' (its options: scale, center)") in r.stderr
    assert "arms.slow.distill.switch.plateau.patience: Input should be greater than or equal to 1" in r.stderr
    # without the plugin installed, its names are unknown and the known ones are listed
    r = _cli(env_with(), tmp_path, "validate", EXAMPLE / "suite.yaml")
    assert r.returncode == 2 and "unknown loss 'logit_mse'; known: det_logit_kd, eps_distill, kd" in r.stderr
    assert "unknown switch rule 'plateau'; known: fixed_epoch, never, same_as, surpass_teacher" in r.stderr


def _fake_dist(site: Path, dist: str, module: str, body: str, ep: str = "register") -> None:
    """An installed distribution as importlib.metadata sees it: a module and its dist-info."""
    (site / f"{module}.py").write_text(body)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[w2s_bench.plugins]\n{module} = {module}:{ep}\n")


def test_a_broken_plugin_is_named_never_a_traceback(env_with, tmp_path, write_suite):
    site = tmp_path / "site"
    site.mkdir()
    _fake_dist(site, "broken-w2s", "broken_w2s", "import not_installed_dependency\n")
    suite = write_suite(tiny_suite_dict())
    for args in (("validate", suite), ("ls",)):
        r = _cli(env_with(site), tmp_path, *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert ("plugin 'broken_w2s' (broken_w2s:register, from package broken-w2s) failed to load: "
                "ModuleNotFoundError: No module named 'not_installed_dependency'") in r.stderr
    assert "surpass_teacher" in r.stdout  # ls still lists everything that did load


# ------------------------------------------------------------------ in-process, no install
@pytest.fixture
def fake_plugins(monkeypatch):
    """Replace the installed entry points by `eps` for this test, then load the real ones again."""

    def install(*eps: EntryPoint) -> list:
        monkeypatch.setattr(registry, "_entry_points", lambda: list(eps))
        registry._reset_plugins_for_tests()
        return load_plugins()

    yield install
    monkeypatch.undo()
    registry._reset_plugins_for_tests()


def _ep(name: str, target: str) -> EntryPoint:
    return EntryPoint(name, target, registry.ENTRY_POINT_GROUP)


def _registers(*calls):
    def register(registries):
        for reg, args, meta in calls:
            getattr(registries, reg).add(*args, **meta)

    return register


def test_failing_plugins_are_rolled_back_and_named(fake_plugins, monkeypatch):
    mod = type(sys)("fake_w2s_plugins")
    mod.half = _registers(("losses", ("half_loss", "x.y:z", "ok"), {}), ("losses", ("kd", "x.y:z", "dup"), {}))
    mod.not_callable = 3

    def heavy(registries):
        registries.switches.add("heavy_rule", "x.y:Z", "imports a heavy library")
        sys.modules["fake_w2s_heavy"] = type(sys)("fake_w2s_heavy")  # as `import torch` would

    mod.heavy = heavy
    monkeypatch.setitem(sys.modules, "fake_w2s_plugins", mod)
    monkeypatch.setattr(registry, "HEAVY", ("fake_w2s_heavy",))  # stands for torch (imported here already)
    monkeypatch.delitem(sys.modules, "fake_w2s_heavy", raising=False)
    plugins = fake_plugins(_ep("half", "fake_w2s_plugins:half"), _ep("nc", "fake_w2s_plugins:not_callable"),
                           _ep("heavy", "fake_w2s_plugins:heavy"))
    errors = {p.name: p.error for p in plugins}
    assert "loss 'kd' is already registered (by w2s-bench)" in errors["half"]
    assert "half_loss" not in LOSSES  # what it added before failing is removed again
    assert "not callable" in errors["nc"]
    assert "imported fake_w2s_heavy while registering" in errors["heavy"] and "heavy_rule" not in SWITCHES
    assert len(plugin_problems()) == 3
    with pytest.raises(SuiteError) as e:
        validate_dict(tiny_suite_dict(), "<t>", check_paths=False)
    assert [p for p, _ in e.value.problems] == ["plugins"] * 3
    assert LOSSES.unknown("x") == ("unknown loss 'x'; known: det_logit_kd, eps_distill, kd, pkd, tfkd, tfkd_reg; "
                                   "plugin(s) that failed to load: half, nc, heavy")


class _WidthOnly(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(16, gt=0)


def test_model_kwargs_are_validated_against_a_declared_options_model(fake_plugins):
    fake_plugins()
    MODELS.add("test_declared_net", "x.y:z", "test", task="classification", options=_WidthOnly)
    try:
        d = tiny_suite_dict(student={"name": "test_declared_net", "kwargs": {"widht": 8}},
                            teachers={"weak": {"model": {"name": "test_declared_net", "kwargs": {"width": -1}}}})
        with pytest.raises(SuiteError) as e:
            validate_dict(d, "<t>", check_paths=False)
        p = dict(e.value.problems)
        assert p["student.kwargs.widht"] == "model 'test_declared_net' has no option 'widht' (its options: width)"
        assert p["teachers.weak.model.kwargs.width"] == "Input should be greater than 0"
    finally:
        MODELS.remove("test_declared_net")


def test_module_attr_names_are_not_accepted_and_say_how_to_register():
    with pytest.raises(SuiteError) as e:
        validate_dict(tiny_suite_dict(distill={"loss": "mypkg.losses:my_loss"}), "<t>", check_paths=False)
    msg = dict(e.value.problems)["distill.loss"]
    assert msg.startswith("unknown loss 'mypkg.losses:my_loss'; known: ") and "w2s_bench.plugins" in msg


# ------------------------------------------------------------ the example's components
@pytest.fixture
def example_src(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    yield
    for m in [m for m in sys.modules if m.startswith("w2s_plugin_example")]:
        del sys.modules[m]


def test_example_options_defaults_are_the_components_defaults(example_src):
    import inspect

    from w2s_plugin_example.loss import LogitMSE
    from w2s_plugin_example.options import LogitMSEOptions, PlateauOptions
    from w2s_plugin_example.switch import Plateau

    for cls, opts in ((LogitMSE, LogitMSEOptions), (Plateau, PlateauOptions)):
        params = inspect.signature(cls).parameters
        assert set(params) == set(opts.model_fields)  # the constructor takes exactly the options
    assert {k: p.default for k, p in inspect.signature(LogitMSE).parameters.items()} == LogitMSEOptions().model_dump()


def test_example_loss_is_the_centred_logit_mse(example_src):
    import torch
    from w2s_plugin_example.loss import LogitMSE

    from benchmark.distill.losses import Outputs

    zs = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    zt = torch.tensor([[2.0, 3.0, 4.0], [1.0, 0.0, -1.0]])  # row 0: a shift of zs; row 1: +-1 off
    # centred: row 0 matches exactly; row 1 differs by (-1, 0, 1): mean over 6 elements = 2/6
    assert torch.isclose(LogitMSE(scale=3.0)(Outputs(zs, zt, None)), torch.tensor(1.0))
    assert torch.isclose(LogitMSE(center=False)(Outputs(zs, zt, None)), torch.tensor((3 + 2) / 6))


def test_example_plateau_rule_counts_stale_evaluations_in_the_metric_direction(example_src):
    from w2s_plugin_example.switch import Plateau

    from benchmark.distill.switch import Evaluation

    def run(values, direction, **kw):
        rule, memo = Plateau(**kw), {}
        for i, v in enumerate(values):
            if rule.decide(Evaluation(i, i, v, None, direction), memo):
                return i
        return None

    assert run([10, 20, 21, 22, 30], "higher", patience=2, min_delta=2.0) == 3  # 21, 22: +1, +2 are not > 2
    assert run([10, 20, 21, 30, 31], "higher", patience=2, min_delta=2.0) is None  # reset by 30
    assert run([50, 40, 41, 39.5], "lower", patience=2, min_delta=0.0) is None  # FID 39.5 < 40 improves
    assert run([50, 40, 41, 40], "lower", patience=2, min_delta=0.0) == 3
    assert run([None, 10, 10], "higher", patience=1, min_delta=0.0) == 2  # no holdout value: no decision


def test_a_broken_options_declaration_is_a_problem_not_a_traceback(fake_plugins):
    fake_plugins()
    SWITCHES.add("test_bad_opts", "x.y:Z", "test", options="no_such_module_w2s:Options")
    LOSSES.add("test_bad_loss", "x.y:z", "test", task="classification", needs_teacher=False, options=int)
    try:
        d = tiny_suite_dict(distill={"loss": "test_bad_loss", "teacher": None,
                                     "switch": {"test_bad_opts": {"k": 1}}})
        with pytest.raises(SuiteError) as e:
            validate_dict(d, "<t>", check_paths=False)
        p = dict(e.value.problems)
        assert p["distill.switch"].startswith("Value error, switch rule 'test_bad_opts': its options model "
                                              "does not load: ModuleNotFoundError")
        assert "loss 'test_bad_loss': its options model does not load: PluginError" in p["distill.kwargs"]
        assert "must be a pydantic model class" in p["distill.kwargs"]
    finally:
        SWITCHES.remove("test_bad_opts")
        LOSSES.remove("test_bad_loss")
