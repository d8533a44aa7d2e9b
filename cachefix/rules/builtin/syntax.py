"""CF001 syntax: the `# syntax=` directive is older than what the file uses."""

from __future__ import annotations

from collections.abc import Iterable

from cachefix.model import Finding
from cachefix.rewriter.dockerfile import Dockerfile
from cachefix.rewriter.syntax import directive_edit, needed_version, parse_frontend
from cachefix.rules.rule import FileRule, FileScope


class SyntaxRule(FileRule):
    """
    ## What it does
    Checks that a `# syntax=docker/dockerfile:X` directive is new enough for what the file
    uses, and raises it when it is not. When cachefix adds the first cache mount to a file,
    the fix also writes `# syntax=docker/dockerfile:1.3` (or what `--syntax` chose) at the top.

    ## Why is this bad?
    Cache mounts are stable since frontend 1.2; variables inside mount options (`id=${X}`)
    are expanded only since 1.3; heredocs and `COPY --link` need 1.4. An older directive makes
    the build fail, or silently share one cache between platforms.

    The directive costs a pull of the frontend image when the build starts, which fails in an
    air-gapped builder: `--syntax none` never writes one (Docker 23 and newer understand
    `RUN --mount` without it; buildah and podman ignore the line).

    ## Example
    ```dockerfile
    # syntax=docker/dockerfile:1.2
    RUN <<EOF
    pip install -r requirements.txt
    EOF
    ```

    ## Use instead
    ```dockerfile
    # syntax=docker/dockerfile:1.4
    ```

    ## Fix safety
    Safe: a newer 1.x frontend reads every older file. An existing directive is never lowered,
    and a directive naming another frontend image is left alone.
    """

    code = "CF001"
    name = "syntax-directive"
    manager = "syntax"
    summary = "`# syntax=` older than the features the file uses"

    def check_file(self, scope: FileScope) -> Iterable[Finding]:
        """A finding only for an existing directive that is too old; adding one is part of a mount fix."""
        dockerfile, requested = scope.dockerfile, scope.syntax
        pinned = self.pinned_too_old(dockerfile, adds_mounts=False)
        if pinned is not None:
            yield pinned
            return
        current = next((d for d in dockerfile.directives if d.name == "syntax"), None)
        edit = directive_edit(dockerfile, requested, adds_mounts=False)
        if current is None or edit is None:
            return
        needed = ".".join(map(str, needed_version(dockerfile, adds_mounts=False) or ()))
        yield self.finding(dockerfile, current.span,
                           f"`# syntax={current.value}` is older than the features this file uses need "
                           f"(docker/dockerfile:{needed})", [edit])

    def pinned_too_old(self, dockerfile: Dockerfile, *, adds_mounts: bool) -> Finding | None:
        """The finding for a directive pinned by digest to a frontend too old for the file."""
        current = next((d for d in dockerfile.directives if d.name == "syntax"), None)
        frontend = parse_frontend(current.value) if current is not None else None
        needed = needed_version(dockerfile, adds_mounts)
        if current is None or frontend is None or not frontend.pinned or needed is None or frontend.at_least(needed):
            return None
        return self.finding(dockerfile, current.span,
                            f"`# syntax={current.value}` pins by digest a frontend older than "
                            f"docker/dockerfile:{'.'.join(map(str, needed))}, which this file "
                            f"{'needs for cache mounts' if adds_mounts else 'uses'}: pin a newer one, "
                            "then run cachefix again")
