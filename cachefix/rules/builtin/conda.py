"""CF104 conda: `conda`/`mamba`/`micromamba` installs without a locked cache mount on the package cache."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext, command_env, in_home, word_path
from cachefix.rewriter.mounts import ExistingMount, existing_mounts, is_within, same_path
from cachefix.rewriter.shell import Command
from cachefix.rules.calls import Invocation, invocation, option_value, truthy
from cachefix.rules.user_cache import Cache, UserCacheRule

PROGRAMS = ("conda", "mamba", "micromamba")
TAKES_VALUE = frozenset({"-r", "--root-prefix", "--rc-file"})
INSTALLING = frozenset({"install", "create", "update", "upgrade"})
# Where images install conda: conda and mamba use /opt/conda in the continuumio and condaforge
# images; micromamba in mambaorg/micromamba (ENV MAMBA_ROOT_PREFIX="/opt/conda").
CONDA_IMAGES = frozenset({"continuumio/miniconda3", "continuumio/miniconda", "continuumio/anaconda3",
                          "continuumio/anaconda", "condaforge/miniforge3", "condaforge/miniforge-pypy3",
                          "condaforge/mambaforge", "condaforge/mambaforge-pypy3"})
IMAGE_ROOTS = {**{(image, p): "/opt/conda" for image in CONDA_IMAGES for p in ("conda", "mamba")},
               ("mambaorg/micromamba", "micromamba"): "/opt/conda"}
# The Miniconda, Anaconda, Miniforge and Mambaforge installers: `bash Miniforge3-Linux-x86_64.sh -b -p DIR`.
INSTALLER = re.compile(r"(?i)(mini|ana)conda|miniforge|mambaforge")
# conda reads CONDA_<SETTING>, libmamba MAMBA_<SETTING>: either makes packages symlinks into the cache.
SOFTLINK_SETTINGS = ("always_softlink", "allow_softlinks")


@dataclass(frozen=True)
class CondaState:
    """What earlier RUNs of the stage did: where an installer put conda, whether symlinks were turned on."""

    root: str | None = None
    softlinks: bool = False


def conda(command: Command) -> Invocation | None:
    return invocation(command, PROGRAMS, TAKES_VALUE)


def action(call: Invocation) -> str | None:
    """`install`, `create`, `update`, also as `conda env create|update`."""
    words = [w.value for w in call.args if w.value is not None and not w.value.startswith("-")]
    if words[:1] == ["env"] and len(words) > 1:
        return words[1] if words[1] in ("create", "update") else None
    return call.subcommand if call.subcommand in INSTALLING else None


def installer_prefix(command: Command, env: Mapping[str, str], home: str | None) -> str | None:
    """`bash Miniconda3-latest-Linux-x86_64.sh -b -p /opt/conda` installs conda at /opt/conda."""
    words = list(command.words[1:]) if command.name in ("bash", "sh") else list(command.words)
    if not words or not INSTALLER.search(words[0].value or words[0].raw) or not (words[0].value or "").endswith(".sh"):
        return None
    prefix = next((words[i + 1] for i, w in enumerate(words[:-1]) if w.value == "-p"), None)
    return None if prefix is None else word_path(prefix, env, home)


def bootstrapped_root(call: Invocation | None) -> str | None:
    """`micromamba install --root-prefix=/opt/conda --prefix=/opt/conda mamba`: conda or mamba
    installed as the base environment of a root prefix (how Jupyter's foundation image does it)."""
    if call is None or call.subcommand not in ("install", "create"):
        return None
    root = option_value(call.args, {"-r", "--root-prefix"}) or option_value(call.args, {"-p", "--prefix"})
    packages = {(w.value or "").strip("'\"").split("=")[0].split("<")[0].split(">")[0] for w in call.args}
    return root if root and root.startswith("/") and packages & {"conda", "mamba"} else None


def softlinks(env: Mapping[str, str], call: Invocation) -> bool:
    return any(w.value == "--always-softlink" for w in call.args) or any(
        truthy(env.get(f"{tool}_{setting}".upper())) for tool in ("conda", "mamba") for setting in SOFTLINK_SETTINGS)


def sets_softlinks(call: Invocation | None) -> bool:
    """`conda config --set always_softlink true`, `micromamba config set allow_softlinks yes`."""
    values = [] if call is None else [w.value or "" for w in call.args]
    return call is not None and call.subcommand == "config" and any(
        v in SOFTLINK_SETTINGS and i + 1 < len(values) and truthy(values[i + 1]) for i, v in enumerate(values))


class CondaRule(UserCacheRule):
    """
    ## What it does
    Finds `conda`, `mamba` and `micromamba` installs (`install`, `create`, `update`,
    `env create`, `env update`) in a RUN without a cache mount on the package cache, and adds
    one with `sharing=locked`.

    ## Why is this bad?
    Every rebuild of the layer downloads every package again, and `conda clean -afy` is then
    needed to keep the image small. With a cache mount the packages stay in BuildKit's cache
    between builds and never enter the image.

    The package cache is the first writable of `pkgs_dirs`: `CONDA_PKGS_DIRS` when set, else
    `<root prefix>/pkgs`. The root prefix is where conda is installed: `/opt/conda` in the
    continuumio and condaforge images, the `-p` of a Miniconda/Miniforge installer run earlier
    in the stage (or in the Dockerfile of the tree that builds the base image, as Jupyter's
    docker-stacks do with `micromamba install --root-prefix=/opt/conda ... mamba`), the folder
    of a `/opt/conda/bin/conda` invoked by path, and for micromamba `--root-prefix` or
    `MAMBA_ROOT_PREFIX` (`/opt/conda` in the mambaorg/micromamba image, run as `mambauser`,
    uid and gid 57439). Where the file shows none of these, cachefix reports instead of
    guessing. A user other than root gets the cache outside the installation
    (`/var/cache/conda-UID`, owned by it, with `CONDA_PKGS_DIRS` set for the command, which
    conda, mamba and micromamba all read): a mount on `<root prefix>/pkgs` would leave that
    folder root-owned in the image, and the user could no longer install packages at run time.

    conda and mamba link packages from the cache into the environment by hard links, and copy
    when that fails, as it does across the mount; so the environment is complete in the image.
    `always_softlink` (or `allow_softlinks`, which turns the failed hard link into a symlink)
    would leave it pointing into the mount: reported, not fixed. `sharing=locked`: conda
    extracts packages into the cache without a lock that holds across builds.

    ## Example
    ```dockerfile
    FROM continuumio/miniconda3
    RUN conda install -y numpy && conda clean -afy
    ```

    ## Use instead
    ```dockerfile
    FROM continuumio/miniconda3
    RUN --mount=type=cache,target=/opt/conda/pkgs,sharing=locked conda install -y numpy
    ```

    ## Fix safety
    Safe: the environment gets the same packages. `conda clean` and `rm` of the package cache
    are removed only in the RUN that gains the mount. Not fixed, and reported: an unknown
    package cache, symlinked packages, a user whose uid neither the file nor its base image
    shows, and a RUN that
    would break the cached packages (`find /opt/conda -name '*.a' -delete` reaches into the
    mount and deletes files the next build links from; `-xdev` keeps it out).
    """

    code = "CF104"
    name = "conda-cache-mount"
    manager = "conda"
    summary = "conda/mamba/micromamba install without a locked cache mount on the package cache"
    triggers = observes = ("conda", "mamba", "forge")
    State = CondaState
    programs = frozenset(PROGRAMS)
    takes_value = TAKES_VALUE
    clean_ups = ("clean",)
    deletions_corrupt = True

    def observe(self, run: RunContext, state: object) -> CondaState:
        """Where an installer put conda (the last one wins), and a `config` that turns on symlinks."""
        assert isinstance(state, CondaState)
        roots = [p for c in run.commands
                 if (p := installer_prefix(c, command_env(run, c), run.home) or bootstrapped_root(conda(c)))]
        return CondaState(roots[-1] if roots else state.root,
                          state.softlinks or any(sets_softlinks(conda(c)) for c in run.commands))

    def calls(self, run: RunContext) -> list[tuple[Command, Invocation]]:
        return [(c, a) for c in run.commands if (a := conda(c)) is not None and action(a)]

    def environment(self, run: RunContext, command: Command) -> dict[str, str]:
        """`CONDA_PKGS_DIRS` is a list: the cache is its first folder."""
        env = super().environment(run, command)
        return {**env, "CONDA_PKGS_DIRS": in_home(env.get("CONDA_PKGS_DIRS", "").split(",")[0].strip(), run.home)}

    def caches_for(self, run: RunContext, state: object) -> tuple[Cache, ...]:
        assert isinstance(state, CondaState)
        first, call = self.calls(run)[0]
        root = self._root(run, first, call, state)
        return (Cache(("$CONDA_PKGS_DIRS", *([f"{root.rstrip('/')}/pkgs"] if root else [])), sharing="locked"),)

    def stale(self, run: RunContext, cache: Cache, target: str) -> list[ExistingMount]:
        """A mount on `<root prefix>/pkgs` for a user moved out of it: it would leave that folder
        root-owned in the image (buildkit#3153), so it is replaced."""
        default = cache.locations[-1]
        return [m for m in existing_mounts(run.instruction) if m.is_cache and not is_within(target, m.target)
                and default.startswith("/") and same_path(m.target, default)]

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        assert isinstance(state, CondaState)
        calls = self.calls(run)
        if not calls:
            return
        first, call = calls[0]
        if state.softlinks or any(softlinks(command_env(run, c), a) for c, a in calls):
            yield self.at(run, first, f"{call.program} is set to link packages as symlinks into its package cache "
                                      "(always_softlink or allow_softlinks): with a cache mount the environment "
                                      "would point into the mount, which is not in the image; turn that setting off")
        elif self.caches_for(run, state)[0].resolve(call, self.environment(run, first), run.home)[0] is None:
            yield self.at(run, first, f"{call.program} caches packages in <root prefix>/pkgs, and this file does not "
                                      f"show where {call.program} is installed (base image '{run.stage.base_image}'): "
                                      "set CONDA_PKGS_DIRS with ENV and run cachefix again")
        else:
            yield from super().check(run, state)

    @staticmethod
    def _root(run: RunContext, command: Command, call: Invocation, state: CondaState) -> str | None:
        """Where conda is installed: micromamba's root prefix, the folder of a program run by path,
        an installer run earlier, or what the image is known to use."""
        if call.program == "micromamba":
            root = option_value(call.args, {"-r", "--root-prefix"}) or command_env(run, command).get(
                "MAMBA_ROOT_PREFIX")
        else:
            path = next((w.value for w in command.words if w.value and w.value.endswith("/" + call.program)), "")
            found = re.fullmatch(r"(/.+)/(bin|condabin)/(conda|mamba)", path)
            root = found.group(1) if found else state.root
        return root or IMAGE_ROOTS.get((run.stage.image, call.program))
