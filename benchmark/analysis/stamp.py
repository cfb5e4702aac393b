"""What a report was made from: a stamp derived from the results alone (never the clock), and
whether a written report is current. Pure except report_is_current, which reads the report."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from pathlib import Path

from benchmark.analysis.load import SuiteData
from benchmark.analysis.quality import FINISHED

STAMP_NAME = "results_stamp.json"


def suite_description(suite: SuiteData) -> str:
    """The suite's free-text description (the latest one, as recorded in the lock)."""
    return str((suite.lock.get("resolved") or {}).get("description") or "").strip()


def _parse_time(s: object) -> _dt.datetime | None:
    """A manifest/lock time ('2026-11-27T17:14:04+0000') as an aware datetime; None if not."""
    try:
        return _dt.datetime.strptime(str(s), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def results_stamp(suite: SuiteData) -> dict[str, str]:
    """What a report is made from, derived from the results alone (never the clock, so a
    report regenerated from unchanged results is byte-identical):

    results_as_of:       the latest end time of a finished (complete or diverged) run, in UTC
                         ('2026-11-27 17:14 UTC'); the lock's creation time when none finished.
    results_fingerprint: sha256 (16 hex digits) of the finished runs (id, status, end), the
                         teachers' builds, the locked protocol and the suite description.
    A run still in progress changes neither: it is not a result yet.
    """
    fin = suite.runs[suite.runs["status"].isin(FINISHED)]
    ends = [t for t in (_parse_time(e) for e in fin["ended"]) if t is not None]
    last = max(ends) if ends else _parse_time(suite.lock.get("created"))
    as_of = last.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if last else "?"
    body = {
        "runs": sorted([str(r.run_id), str(r.status), str(r.ended)] for r in fin.itertuples()),
        "teachers": sorted([str(k), int(v.get("generation", 1))] for k, v in suite.teachers.items()),
        "locked": suite.lock.get("locked"),
        "description": suite_description(suite),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return {"results_as_of": as_of, "results_fingerprint": digest[:16]}



def report_is_current(suite: SuiteData, report_dir: Path) -> tuple[bool, str]:
    """(True, why) when report_dir/report.md was made from the suite's current results, else
    (False, why). Reads the stamp written with the report; a report from before stamps existed
    is current when no finished run ended after the minute its 'Generated ... UTC' line gives."""
    md = Path(report_dir) / "report.md"
    if not md.is_file():
        return False, "no report yet"
    stamp = results_stamp(suite)
    sp = Path(report_dir) / STAMP_NAME
    if sp.is_file():
        try:
            old = json.loads(sp.read_text(encoding="utf-8"))
        except ValueError:
            return False, f"{sp} is unreadable"
        if old.get("results_fingerprint") == stamp["results_fingerprint"]:
            return True, f"results unchanged since the report, as of {stamp['results_as_of']}"
        return False, (f"results changed: finished runs as of {stamp['results_as_of']}, report "
                       f"made from results as of {old.get('results_as_of', '?')}")
    m = re.search(r"^Generated (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", md.read_text("utf-8"), re.M)
    if not m:
        return False, "the report has no record of the results it was made from"
    made = _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=_dt.timezone.utc)
    fin = suite.runs[suite.runs["status"].isin(FINISHED)]
    ends = [t for t in (_parse_time(e) for e in fin["ended"]) if t is not None]
    newer = [t for t in ends if t >= made + _dt.timedelta(minutes=1)]
    if newer:
        return False, f"{len(newer)} run(s) finished after the report was generated"
    return True, "no run finished after the report was generated"

