"""The results store moved to `benchmark.store` (a leaf: the training loop and the metrics
write through it too, and they sit below the runner). This path stays for code outside the
package that still imports it (tests/test_concurrency.py, tests/test_resume.py)."""

from ..store import (  # noqa: F401 (re-exported)
    append_jsonl,
    atomic_write_bytes,
    count_lines,
    read_json,
    read_jsonl,
    remove,
    set_read_only,
    truncate_jsonl,
    write_json,
)
