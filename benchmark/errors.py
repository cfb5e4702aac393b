"""User-facing errors: the CLI prints these without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad suite, missing data, ...). Exit code 2 by default."""

    exit_code = 2


class SuiteError(UserError):
    """Every problem found in a suite, each with its YAML path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)"]
        lines += [f"  {path or '<root>'}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


class DataError(UserError):
    """Data missing, unreadable or corrupt; the message says where we looked."""


class LockMismatch(UserError):
    """The suite differs from its pre-registration lock."""
