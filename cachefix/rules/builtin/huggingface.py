"""CF301 huggingface: model downloads that either miss the cache or lose the model."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cachefix.model import Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.mounts import CacheMount, ExistingMount, cache_mount_covering, existing_mounts
from cachefix.rewriter.shell import REMOVABLE_JOINS, Command, Word, iter_options
from cachefix.rules.placement import mount_fix
from cachefix.rules.rule import RunRule
from cachefix.rules.user_cache import Cache

CLIS = frozenset({"huggingface-cli", "hf"})
PYTHON_CALLS = re.compile(r"\b(snapshot_download|hf_hub_download)\s*\(")
# Options of `hf download` that take a value (the rest are flags).
VALUED = frozenset({"--revision", "--repo-type", "--include", "--exclude", "--token", "--cache-dir", "--local-dir",
                    "--local-dir-use-symlinks", "--max-workers"})
# The snapshot's path is kept in a variable, so a failed download fails the `&&` chain: inside
# `cp -rL "$(hf download ...)"/. DIR` the substitution would be empty, and cp would copy `/`.
SNAPSHOT = "hf_snapshot"
PATTERN = (f'RUN --mount=type=cache,target=/root/.cache/huggingface mkdir -p /models/NAME && '
           f'{SNAPSHOT}=$(hf download ORG/NAME --revision SHA --quiet) && cp -rL "${SNAPSHOT}"/. /models/NAME')


HUB = Cache(("$HF_HUB_CACHE", "$HF_HOME", "$XDG_CACHE_HOME/huggingface", "~/.cache/huggingface"))


def hub_cache(env: dict[str, str], home: str | None) -> str | None:
    """The folder to mount: HF_HUB_CACHE, else HF_HOME, else `$XDG_CACHE_HOME/huggingface`."""
    return HUB.resolve(None, env, home)[0]


def is_download(command: Command) -> bool:
    values = command.values()
    return command.name in CLIS and len(values) > 1 and values[1] == "download"


def split_arguments(words: tuple[Word, ...]) -> tuple[list[Word], dict[str, tuple[int, Word | None]]]:
    """Positional words and options (option → (index of the option word, its value word))."""
    positional: list[Word] = []
    options: dict[str, tuple[int, Word | None]] = {}
    skip: set[int] = set()
    for i, option, inline in iter_options(list(words)):
        takes = option in VALUED and inline is None
        options[option] = (i, words[i + 1] if takes and i + 1 < len(words) else None)
        skip.add(i)
        if takes:
            skip.add(i + 1)
    positional = [w for i, w in enumerate(words) if i not in skip]
    return positional, options


def _consumer(run: RunContext, download: Command) -> Command | None:
    """The command that takes a substituted download's output as (part of) one of its words:
    `cp` in `cp -rL "$(hf download ...)"/. DIR`. None for `VAR=$(hf download ...)`."""
    if not download.substituted or download.span is None:
        return None
    start, end = download.span
    return next((c for c in run.commands if c is not download and any(
        w.span is not None and w.span[0] < start and end <= w.span[1] for w in c.words)), None)


def _grouped(text: str, replaced: Command) -> str:
    """`text` (an `&&` chain) as a replacement for one command: in braces unless that command
    sits alone or in a plain list: `A || X` would otherwise become `(A || first) && rest`."""
    plain = {replaced.joined_before, replaced.joined_after} <= REMOVABLE_JOINS and not replaced.in_pipeline
    return text if plain else f"{{ {text}; }}"


class HuggingFaceRule(RunRule):
    """
    ## What it does
    Finds HuggingFace model downloads in a RUN (`hf download`, `huggingface-cli download`,
    `snapshot_download(` / `hf_hub_download(` in Python run by the RUN) and makes them
    download once, with the model still in the image.

    ## Why is this bad?
    A download without a cache mount fetches the whole model on every rebuild of the layer.
    The naive fixes lose something:
    - a cache mount on the HuggingFace cache alone keeps the model out of the image (it
      lands in the mount), so the container downloads it again at run time, or fails offline;
    - `--local-dir` puts the model in the image but bypasses the cache, so the mount saves
      nothing.
    The safe pattern downloads through a mounted cache and copies the files out, with links
    resolved, in the same RUN.

    ## Example
    ```dockerfile
    RUN hf download org/model --local-dir /models/model
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/root/.cache/huggingface mkdir -p /models/model && hf_snapshot=$(hf download org/model --quiet) && cp -rL "$hf_snapshot"/. /models/model
    ```

    The path of the snapshot goes through a variable so that a failed download (a gated
    repository, a typo, no network) fails the RUN: in `cp -rL "$(hf download ...)"/. DIR`
    the substitution would be empty and cp would copy the whole file system (`/.`). That
    form (which earlier versions of cachefix wrote) is reported and rewritten too.

    ## Fix safety
    `hf download REPO --local-dir DIR` (a whole repository, as root) is rewritten to the
    pattern above: the same files end up in DIR, and the RUN fails when the download fails,
    as before. What differs in the image: DIR no longer holds the `.cache/huggingface`
    download metadata that `--local-dir` writes there (huggingface_hub 0.23 and later).
    Downloads of single files, downloads that stay in the cache, Python calls and downloads
    by another user are reported with the pattern to apply, not rewritten: doing it right
    needs knowledge of where the app loads the model from.
    """  # noqa: E501

    code = "CF301"
    name = "huggingface-cache-mount"
    manager = "hf"
    summary = "HuggingFace download without a cache mount, or one that loses the model"
    triggers = ("download",)

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        mounts = existing_mounts(run.instruction)
        for command in run.commands:
            if is_download(command):
                consumer = _consumer(run, command)
                if consumer is not None:
                    yield self._unguarded(run, command, consumer)
                    continue
                yield from self._cli(run, command, mounts)
            elif self._python_download(command):
                yield from self._python(run, command, mounts)
        for heredoc in run.instruction.heredocs:
            if PYTHON_CALLS.search(heredoc.content) and not self._copied_out(run):
                yield self.finding(run.dockerfile, heredoc.body_span, self._advice(run, "Python code"))

    def _cli(self, run: RunContext, command: Command, mounts: list[ExistingMount]) -> Iterable[Finding]:
        env = command_env(run, command)
        cache = hub_cache(env, run.home)
        mounted = cache is not None and cache_mount_covering(mounts, cache) is not None
        positional, options = split_arguments(command.words[2:])
        local_dir = options.get("--local-dir")
        if mounted and local_dir is None and (command.substituted or self._copied_out(run)):
            return  # already the safe pattern
        fixable = (local_dir is not None and local_dir[1] is not None and local_dir[1].value is not None
                   and len(positional) == 1 and run.is_root and run.shell_form and cache is not None
                   and command.span is not None and not command.in_pipeline and "--cache-dir" not in options)
        if not fixable:
            yield self.at(run, command, self._advice(run, "`hf download`"))
            return
        assert cache is not None and local_dir is not None and local_dir[1] is not None and command.span
        mount = mount_fix(run, [CacheMount(cache)], self.options, self.manager)
        rewrite = edits.Edit(command.span[0], command.span[1], self._safe_download(command, local_dir[1].raw))
        yield self.at(run, command, f"`--local-dir` bypasses the HuggingFace cache: download through a cache mount "
                                    f"on {cache} and copy the files to {local_dir[1].value}",
                      [*mount.edits, rewrite], mounts=mount.flags)

    @staticmethod
    def _safe_download(command: Command, destination: str) -> str:
        """`mkdir -p DIR && cp -rL "$(hf download REPO OPTIONS --quiet)"/. DIR`."""
        kept: list[str] = []
        skip = False
        words = command.words
        for i, word in enumerate(words):
            if skip:
                skip = False
                continue
            value = word.value or ""
            option = value.split("=", 1)[0]
            if option in ("--local-dir", "--local-dir-use-symlinks", "--quiet"):
                skip = "=" not in value and i + 1 < len(words) and option != "--quiet"
                continue
            kept.append(word.raw)
        prefix = " ".join(f"{a.name}={a.value}" for a in command.assignments if a.value is not None)
        download = " ".join([*([prefix] if prefix else []), *kept, "--quiet"])
        return _grouped(f'mkdir -p {destination} && {SNAPSHOT}=$({download}) && cp -rL "${SNAPSHOT}"/. {destination}',
                        command)

    def _unguarded(self, run: RunContext, download: Command, consumer: Command) -> Finding:
        """`cp -rL "$(hf download ...)"/. DIR`: rewritten so that a failed download stops the RUN."""
        message = ("a failed `hf download` leaves `$(...)` empty, so this command would go on with an empty path "
                   f"(`cp -rL /. DIR` copies the whole file system): keep the path in a variable first, "
                   f'`{SNAPSHOT}=$(hf download ...) && cp -rL "${SNAPSHOT}"/. DIR`')
        text = run.dockerfile.text
        if consumer.span is None or download.span is None or consumer.in_pipeline:
            return self.at(run, consumer, message)
        opening = text.rfind("$(", consumer.span[0], download.span[0])
        closing = text.find(")", download.span[1], consumer.span[1])
        if opening < 0 or closing < 0 or text[opening + 2:download.span[0]].strip() or \
                text[download.span[1]:closing].strip():
            return self.at(run, consumer, message)
        guarded = (f"{SNAPSHOT}={text[opening:closing + 1]} && {text[consumer.span[0]:opening]}${SNAPSHOT}"
                   f"{text[closing + 1:consumer.span[1]]}")
        return self.at(run, consumer, message, [edits.Edit(*consumer.span, _grouped(guarded, consumer))])

    def _python_download(self, command: Command) -> bool:
        return command.name.startswith("python") and any(PYTHON_CALLS.search(w.value or w.raw) for w in command.args)

    def _python(self, run: RunContext, command: Command, mounts: list[ExistingMount]) -> Iterable[Finding]:
        cache = hub_cache(command_env(run, command), run.home)
        if cache is not None and cache_mount_covering(mounts, cache) is not None and self._copied_out(run):
            return
        yield self.at(run, command, self._advice(run, "Python code"))

    @staticmethod
    def _copied_out(run: RunContext) -> bool:
        """The RUN copies the download out of the cache (`cp -L`, `shutil.copytree`)."""
        if any("copytree" in h.content for h in run.instruction.heredocs):
            return True
        for command in run.commands:
            flags = [w.value for w in command.args if (w.value or "").startswith("-")]
            if command.name == "cp" and any("L" in f or f == "--dereference" for f in flags if f):
                return True
            if any("copytree" in (w.value or w.raw) for w in command.args):
                return True
        return False

    @staticmethod
    def _advice(run: RunContext, what: str) -> str:
        where = "a cache mount"
        if not run.is_root:
            where = "a cache outside the home folder (HF_HOME=/var/cache/hf for that RUN, uid=/gid= on the mount)"
        return (f"{what} downloads a model on every rebuild (or, with only a cache mount, leaves it out of the "
                f"image): download through {where} and copy it out with links resolved in the same RUN, e.g. "
                f"`{PATTERN}` (in Python: shutil.copytree(snapshot_download(...), '/models/NAME'))")
