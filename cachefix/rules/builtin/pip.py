"""CF101 pip: `pip install` without a cache mount where pip really caches."""

from __future__ import annotations

from cachefix.rules.user_cache import Cache, Switch, UserCacheRule

# `pip`, `pip3`, `pip3.12` (also run as `python3 -m pip`)
VERSIONS = ("", "2", "3", "2.7", *(f"3.{minor}" for minor in range(5, 20)))


class PipRule(UserCacheRule):
    """
    ## What it does
    Finds `pip install` (also `pip3`, `pip3.12`, `python -m pip`, `pip download`, `pip wheel`)
    in a RUN that has no cache mount on pip's cache folder, and adds one.

    ## Why is this bad?
    Without a cache mount every rebuild of the layer downloads every wheel again. With one,
    the wheels stay in BuildKit's cache between builds and never enter the image, so
    `--no-cache-dir` is no longer needed to keep the image small.

    The mount goes where pip really caches for the user running it: `/root/.cache/pip` for
    root, or `PIP_CACHE_DIR` / `XDG_CACHE_HOME` when the file sets them. For another user it
    goes outside the home folder (`/var/cache/pip-UID`, owned by that uid, with
    `PIP_CACHE_DIR` set for that command only): a mount under `/home/app/.cache` would leave
    `/home/app/.cache` owned by root in the image, and the app could no longer write its own
    cache at run time. A user created without a fixed uid (`useradd -m app`) gets
    `/var/cache/pip-app` with `mode=0777`, which any uid may write.

    `PIP_NO_CACHE_DIR` disables the cache whatever its value, even `0`. Set by ENV or ARG, it
    is part of the image's configuration and stays; the command that gets the mount runs
    with `env -u PIP_NO_CACHE_DIR` instead.

    ## Example
    ```dockerfile
    RUN pip install --no-cache-dir -r requirements.txt
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
    ```

    ## Fix safety
    Safe: only where bytes come from changes. `--no-cache-dir` and a `PIP_NO_CACHE_DIR=`
    prefix are removed only in the RUN that gains the mount. Not fixed, and reported instead:
    an install whose `--target`/`--prefix`/`-d` points into the cache (the result would be
    lost with the mount).
    """

    code = "CF101"
    name = "pip-cache-mount"
    manager = "pip"
    summary = "pip install without a cache mount on pip's cache"
    triggers = ("pip",)
    programs = frozenset(f"pip{version}" for version in VERSIONS)
    downloading = frozenset({"install", "download", "wheel"})
    caches = (Cache(("$PIP_CACHE_DIR", "$XDG_CACHE_HOME/pip", "~/.cache/pip"), option=("--cache-dir",)),)
    switches = (Switch("PIP_NO_CACHE_DIR"),)
    defeating = frozenset({"--no-cache-dir"})
    clean_ups = ("cache purge",)
    destinations = frozenset({"--target", "-t", "--prefix", "--root", "--dest", "-d", "--wheel-dir", "-w"})
