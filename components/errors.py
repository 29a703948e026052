"""One error base class and one exit-code table for every command.

Each command's errors derive from `Mem0InfraError`, whose `exit_code` says what the
shell sees: `cli.main` catches the base class once and exits with that code.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

__all__ = ["ExitCode", "Mem0InfraError"]


class ExitCode(IntEnum):
    """What a command's exit status means, the same for every command."""

    OK = 0
    # The command ran and found something wrong: a failed check, an audit finding, a
    # restore refused after verification, a benchmark over its threshold, results differ.
    FAILED = 1
    # The command could not run: bad arguments or settings, no database, a broken file.
    UNUSABLE = 2
    # Interrupted (Ctrl-C) after cleaning up: the shell's code for SIGINT.
    INTERRUPTED = 130


class Mem0InfraError(Exception):
    """A failure a command reports as one line, then exits with `exit_code`."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNUSABLE
