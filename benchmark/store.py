"""Crash-safe writes for the results contract.

JSON files are replaced atomically (temporary file, fsync, rename). JSONL files are
appended line by line with fsync; a torn last line (a crash mid-write) is detected and
dropped when the run resumes, and checkpoints record how many lines were valid.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_READ_ONLY = False


def set_read_only(flag: bool) -> None:
    """Make every write here a no-op (DDP ranks other than 0 read results, never write)."""
    global _READ_ONLY
    _READ_ONLY = flag


def remove(path: Path) -> None:
    """Delete a results file (respects read-only mode)."""
    if not _READ_ONLY:
        Path(path).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    if _READ_ONLY:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # say which file a disk-full error hit
        raise
    _fsync_dir(path.parent)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def append_jsonl(path: Path, rows: list[dict]) -> None:
    if not rows or _READ_ONLY:
        return
    data = "".join(json.dumps(r, sort_keys=True, default=_jsonable) + "\n" for r in rows).encode()
    try:
        with open(path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        # a partly written tail is a torn line: the checkpoint's line count drops it on resume
        if e.filename is None:
            e.filename = str(path)
        raise


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def read_jsonl(path: Path) -> tuple[list[dict], bool]:
    """Rows of a JSONL file and whether a torn (unparseable) last line was skipped."""
    path = Path(path)
    if not path.exists():
        return [], False
    rows, torn = [], False
    lines = path.read_bytes().split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i >= len(lines) - 2:  # only the last line may be torn
                torn = True
                continue
            raise
    return rows, torn


def truncate_jsonl(path: Path, n_lines: int) -> int:
    """Keep the first n complete lines (drops rows written after the last checkpoint and
    any torn tail). Returns how many lines were dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    lines = path.read_bytes().split(b"\n")
    complete = lines[:-1] if lines and lines[-1] != b"" else lines[:-1]
    torn = 1 if lines and lines[-1] != b"" else 0
    keep = complete[:n_lines]
    dropped = len(complete) - len(keep) + torn
    if dropped:
        atomic_write_bytes(path, b"".join(line + b"\n" for line in keep))
    return dropped


def count_lines(path: Path) -> int:
    path = Path(path)
    if not path.exists():
        return 0
    return path.read_bytes().count(b"\n")
