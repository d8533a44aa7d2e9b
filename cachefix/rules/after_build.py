"""When what a RUN downloads must stay in the image: the one message several rules give for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cachefix.rewriter.context import RunContext
from cachefix.rewriter.shell import Command
from cachefix.rewriter.stages import used_after_build


def needed_after_build(run: RunContext, folders: Sequence[str], uses: Callable[[Command], bool],
                       what: str) -> str | None:
    """The finding's message when `what` this RUN downloads into `folders` ("go's modules") is
    used after the build (see `used_after_build`), or None. A cache mount keeps the downloads out
    of the image: the point for a cache, but not where the tool reads its dependencies from later."""
    reason = used_after_build(run, folders, uses)
    if reason is None:
        return None
    return (f"{what} in {folders[0]} must stay in the image ({reason}): a cache mount would leave them out, and "
            "they would be downloaded again where they are used; keep this RUN as it is, or use what it builds")
