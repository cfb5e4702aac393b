"""Tracker export (optional extras): every run and the report's summary to TensorBoard event
files (tensorboard.py) and to MLflow (mlflow.py).

The trackers get what they can plot themselves (per-run curves, the switch-off event, the
resolved spec as parameters) plus what they cannot compute: the seed-grouped speedup point
estimate and CI per arm x threshold x unit. Each module imports its tracker inside its
functions, so neither package is needed unless its export is asked for
(``pip install 'w2s-bench[trackers]'``).
"""

from __future__ import annotations

import json
from typing import Any


def flatten(d: Any, prefix: str = "", *, raw: bool = False) -> dict[str, Any]:
    """Nested spec dict -> {"a.b.c": value}, sorted by key; what both trackers take as
    parameters. raw=False: every value a string (lists, numbers, bools JSON-encoded, None ->
    "null"); raw=True: str / int / float / bool kept as they are, anything else JSON-encoded."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}.", raw=raw))
        if not d and prefix:
            out[prefix[:-1]] = "{}"
    elif isinstance(d, str) or (raw and isinstance(d, (int, float, bool))):
        out[prefix[:-1]] = d
    else:
        out[prefix[:-1]] = json.dumps(d)
    return dict(sorted(out.items()))
