"""Property: any mutation of a valid suite fed to `validate_dict` gives a valid Suite or a
SuiteError listing problems, never another exception (no traceback for the user)."""

from __future__ import annotations

import copy

from conftest import tiny_suite_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.errors import SuiteError
from benchmark.suite import Suite, run_specs, validate_dict

BASE = tiny_suite_dict()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["${HOME}", "${NOPE_UNSET}", "${X:-3}", "auto", "cuda:0", "sgd", "never",
                                     "baseline", "weak", "resnet8", "timm:nope", "kd", "1e-3"]))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                   st.dictionaries(st.text(max_size=8), c, max_size=3)),
                      max_leaves=6)


def _paths(d, prefix=()):
    yield prefix
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutated(draw):
    d = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            op = draw(st.sampled_from(["set", "delete", "add_key"]))
            if op == "set":
                parent[path[-1]] = draw(values)
            elif op == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_suites_validate_or_raise_suite_error(d):
    try:
        suite = validate_dict(d, check_paths=False, env={"HOME": "/home/x"})
    except SuiteError as e:
        assert e.problems and all(isinstance(m, str) and m for _, m in e.problems)
        return
    assert isinstance(suite, Suite)
    assert run_specs(suite)  # a valid suite also expands into a plan


@settings(max_examples=60, deadline=None)
@given(values)
def test_any_yaml_value_at_the_root(v):
    try:
        validate_dict(v if isinstance(v, dict) else {"name": v}, check_paths=False, env={})
    except SuiteError:
        pass
