"""cachefix: BuildKit cache mounts for Dockerfiles, and a download cache for everything else.

The public API is small and imported lazily, so that linting a Dockerfile never pays for
the HTTP client: ``from cachefix import cached_download`` loads the download runtime only
when it is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "cached_download"]

if TYPE_CHECKING:
    from cachefix.downloads.api import cached_download


def __getattr__(name: str) -> Any:
    if name == "cached_download":
        from cachefix.downloads.api import cached_download

        return cached_download
    raise AttributeError(f"module 'cachefix' has no attribute {name!r}")
