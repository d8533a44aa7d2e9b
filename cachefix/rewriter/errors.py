"""The error of a Dockerfile cachefix refuses, in a module of its own: what only needs to catch
or raise it (the size limits, the runner on a result-cache hit) need not import the parser."""

from __future__ import annotations


class DockerfileSyntaxError(Exception):
    """A Dockerfile BuildKit would refuse (or cachefix cannot analyse), with the 1-based line to blame."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line
        self.message = message

    def __reduce__(self):  # keep picklable (multiprocessing) despite the 2-arg constructor
        return (type(self), (self.line, self.message))
