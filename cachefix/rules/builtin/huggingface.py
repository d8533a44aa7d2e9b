"""CF301 huggingface: `hf download` runs that either miss the cache or lose the model."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from cachefix.model import Edit, Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, command_env
from cachefix.rewriter.mounts import cache_mount_covering, existing_mounts
from cachefix.rewriter.shell import REMOVABLE_JOINS, Command, Word, iter_options
from cachefix.rules import hf_cache
from cachefix.rules.placement import mount_fix, stale_mounts
from cachefix.rules.rule import RunRule
from cachefix.rules.words import set_for_command

CLIS = frozenset({"huggingface-cli", "hf"})
# Options of `hf download` that take a value (the rest are flags).
VALUED = frozenset({"--revision", "--repo-type", "--include", "--exclude", "--token", "--cache-dir", "--local-dir",
                    "--local-dir-use-symlinks", "--max-workers", "--format"})
# Options the rewrite drops: where the files go is the copy's business; `--quiet` is added where the path is read.
DESTINATIONS = ("--local-dir", "--local-dir-use-symlinks", "--cache-dir")
QUIET = ("--quiet", "-q")
# The snapshot's path is kept in a variable, so a failed download fails the `&&` chain: inside
# `cp -rL "$(hf download ...)"/. DIR` the substitution would be empty, and cp would copy `/`.
SNAPSHOT = "hf_snapshot"
PATTERN = ('RUN --mount=type=cache,target=/var/cache/huggingface HF_HOME=/var/cache/huggingface '
           'hf download ORG/NAME --revision SHA && (copy snapshots/SHA to ~/.cache/huggingface/hub as regular files)')


@dataclass
class Download:
    """An `hf download` command's arguments, as the CLI reads them."""

    repo: str | None
    files: list[str]
    options: dict[str, str | None] = field(default_factory=dict)
    where: dict[str, set[int]] = field(default_factory=dict)  # option → indices of its words in the command

    def words_of(self, options: Iterable[str]) -> set[int]:
        return {i for option in options for i in self.where.get(option, ())}

    @property
    def revision(self) -> str:
        return self.options.get("--revision") or "main"

    @property
    def patterns(self) -> bool:
        """Files chosen by pattern (`--include`, a `folder/` argument): the snapshot may hold more
        files than this command asked for, and all of them are copied."""
        return not self.files or any(f.endswith("/") for f in self.files)


def is_download(command: Command) -> bool:
    values = command.values()
    return command.name in CLIS and len(values) > 1 and values[1] == "download"


def parse_download(command: Command) -> Download:
    """The repository, files and options of `hf download REPO [FILE...] [OPTIONS]`."""
    words = command.words[2:]
    options: dict[str, str | None] = {}
    skip: set[int] = set()
    where: dict[str, set[int]] = {}
    for i, option, inline in iter_options(list(words)):
        takes = option in VALUED and inline is None
        value = inline if not takes else (_literal(words[i + 1]) if i + 1 < len(words) else None)
        options[option] = value
        taken = {i, i + 1} if takes else {i}
        skip |= taken
        where.setdefault(option, set()).update(j + 2 for j in taken)
    positional = [_literal(w) for i, w in enumerate(words) if i not in skip]
    files = [f for f in positional[1:] if f is not None]
    return Download(positional[0] if positional else None, files if len(files) == len(positional) - 1 else [""],
                    options, where)


def _literal(word: Word) -> str | None:
    """The word's value when the text says it (quoted or not); None for `$MODEL`, which a build
    argument can change: the copy must name the same repository as the download."""
    return word.value if word.value is not None and word.raw.strip("'\"") == word.value else None


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
    Finds `hf download` and `huggingface-cli download` in a RUN and makes them download once,
    with the model still in the image. (Python calls are CF302's.)

    ## Why is this bad?
    A download without a cache mount fetches the whole model on every rebuild of the layer.
    The naive fixes lose something:
    - a cache mount on the HuggingFace cache keeps the model out of the image (it lands in the
      mount), so the container downloads it again at run time, or fails offline;
    - `--local-dir` puts the model in the image but bypasses the cache, so the mount saves
      nothing.
    The safe pattern downloads with `HF_HOME` on a cache mount at a build-only path, then
    copies the revision it downloaded to where the image reads it, with links resolved, in the
    same RUN.

    ## Example
    ```dockerfile
    RUN hf download org/model
    RUN hf download org/model --local-dir /models/model
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/var/cache/huggingface HF_HOME=/var/cache/huggingface hf download org/model && (src=/var/cache/huggingface/hub/models--org--model; dst=/root/.cache/huggingface/hub/models--org--model; rev=main; ...cp -RL "$src/snapshots/$sha" "$dst/snapshots/$sha"...)
    RUN --mount=type=cache,target=/var/cache/huggingface mkdir -p /models/model && hf_snapshot=$(HF_HOME=/var/cache/huggingface hf download org/model --quiet) && cp -rL "$hf_snapshot"/. /models/model
    ```

    ## Fix safety
    Every form is rewritten: a whole repository, single files (`hf download REPO FILE...`),
    `--include/--exclude`, `--revision`, `--repo-type`, with and without `--local-dir`. The
    cache mount is at `/var/cache/huggingface` (another user's: `/var/cache/huggingface-UID`,
    owned by that uid), so no mount point sits where the image reads its cache; a mount on
    `~/.cache/huggingface` is replaced by it.
    - Without `--local-dir`, the revision is copied into the hub cache the image reads at run
      time (`HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME` or `~/.cache/huggingface`; with
      `--cache-dir C`, C, and the option is dropped from the download): `snapshots/<sha>/` as
      regular files and `refs/<revision>`, which loads offline (`HF_HUB_OFFLINE=1`). The
      `blobs/` folder and `.no_exist` markers are not copied.
    - Single files: exactly those files are copied. With `--include/--exclude` (or a `folder/`
      argument) the whole snapshot is copied, and the cache's snapshot may hold files an earlier
      build downloaded for other patterns: the image can get more files than the patterns ask
      for, never fewer.
    - With `--local-dir DIR`, the path the download prints (`--quiet`) is kept in a variable, so
      a failed download fails the RUN (in `cp -rL "$(hf download ...)"/. DIR` the substitution
      would be empty and cp would copy `/.`; that form is reported and rewritten too), and the
      files are copied to DIR. DIR no longer holds the `.cache/huggingface` download metadata
      that `--local-dir` writes there.

    A user whose uid the file does not show gets a finding: the mount cannot be made writable
    for it. Repository ids, files, revisions and paths that are not plain (`[A-Za-z0-9._/-]`:
    variables, quotes, globs) get a finding with the pattern to apply.
    """  # noqa: E501

    code = "CF301"
    name = "huggingface-cache-mount"
    manager = "hf"
    summary = "HuggingFace download without a cache mount, or one that loses the model"
    triggers = ("download",)

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        for command in run.commands:
            if not is_download(command) or "--dry-run" in command.values():
                continue
            consumer = _consumer(run, command)
            found = self._unguarded(run, command, consumer) if consumer else self._download(run, command)
            if found is not None:
                yield found

    def _download(self, run: RunContext, command: Command) -> Finding | None:
        env = command_env(run, command)
        home = hf_cache.build_home(run)
        if home is None:
            return self.at(run, command, f"`{command.name} download` runs as user '{run.user}' whose uid this file "
                                         "does not show, so a cache mount cannot be made writable for it: create the "
                                         "user with `useradd -u UID` (or use a numeric USER) and run cachefix again")
        variables = hf_cache.build_variables(env, home.target)
        mounted = cache_mount_covering(existing_mounts(run.instruction), home.target) is not None
        if mounted and all(env.get(k) == v for k, v in variables.items()):
            return None  # already the safe pattern
        download = parse_download(command)
        reason = self._refusal(run, command, download)
        if reason:
            return self.at(run, command, f"{reason}: {self._advice()}")
        stale = stale_mounts(run, home.target, "huggingface", ".cache/huggingface")
        mount = mount_fix(run, [home], self.options, self.manager, stale)
        local_dir = download.options.get("--local-dir")
        if command.substituted:  # the RUN reads the printed path itself (`hf_snapshot=$(hf download ...)`)
            edit = set_for_command(command, True, variables)
            why = (f"the cache mount on {stale[0].target} leaves a mount point where the image reads its cache"
                   if stale else "the model is downloaded again on every rebuild")
            message = f"{why}: download with HF_HOME on a build-only cache mount at {home.target}"
        elif local_dir is not None:
            edit = self._to_local_dir(command, download, variables, local_dir)
            message = (f"`--local-dir` bypasses the HuggingFace cache: download through a cache mount at "
                       f"{home.target} and copy the files to {local_dir}")
        else:
            hub = download.options.get("--cache-dir") or hf_cache.runtime_hub(env, run.home)
            assert hub is not None  # checked by _refusal
            edit = self._to_cache(command, download, variables, hub, home.target)
            hidden = (f"the cache mount on {stale[0].target} keeps the model out of the image" if stale
                      else "the model is downloaded again on every rebuild")
            message = (f"{hidden}: download through a cache mount at "
                       f"{home.target} and copy the revision to {hub}, where the image reads it")
        return self.at(run, command, message, [*mount.edits, *([edit] if edit else [])], mounts=mount.flags)

    @staticmethod
    def _refusal(run: RunContext, command: Command, download: Download) -> str | None:
        """Why the command cannot be rewritten (None: it can)."""
        options = download.options
        hub = options.get("--cache-dir") or hf_cache.runtime_hub(command_env(run, command), run.home)
        values = [download.repo, *download.files,
                  *(options[k] for k in ("--revision", "--repo-type", "--local-dir", "--cache-dir") if k in options)]
        if not run.shell_form or command.span is None or command.in_pipeline:
            return "this download cannot be rewritten in place"
        kind = options.get("--repo-type") or "model"
        if not all(hf_cache.is_plain(v) for v in values) or kind not in hf_cache.REPO_TYPES:
            return "the repository, files, revision, type or folders are not plain text (variables, quotes or globs)"
        if "--local-dir" in options and "--cache-dir" in options:
            return "`--local-dir` and `--cache-dir` together are an error of the CLI"
        to_cache = "--local-dir" not in options and not command.substituted
        if to_cache and not (hub is not None and hf_cache.is_plain(hub) and hub.startswith("/")):
            return "the file does not show where the image reads its HuggingFace cache"
        if command.name == "huggingface-cli" and download.files and ("--include" in options or "--exclude" in options):
            return "`--include` takes several patterns in huggingface-cli: which words are files is unclear"
        return None

    @staticmethod
    def _command_text(command: Command, download: Download, variables: dict[str, str], quiet: bool) -> str:
        """The download as shell text: `variables` for it, the dropped options out, `--quiet` added if asked."""
        kept = [a.raw for a in command.assignments if a.name not in variables and a.name not in hf_cache.MOVES]
        dropped = download.words_of([*DESTINATIONS, *(QUIET if quiet else ())])
        words = [w.raw for i, w in enumerate(command.words) if i not in dropped]
        prefix = [f"{k}={v}" for k, v in variables.items()]
        return " ".join([*kept, *prefix, *words, *(["--quiet"] if quiet else [])])

    def _to_cache(self, command: Command, download: Download, variables: dict[str, str], hub: str,
                  build: str) -> Edit:
        """`HF_HOME=<build> hf download ... && <copy of the revision (or the files) into hub>`."""
        folder = hf_cache.repo_folder(download.repo or "", download.options.get("--repo-type") or "model")
        revision = download.revision
        copy = hf_cache.copy_out(build, hub, folder, revision, () if download.patterns else download.files)
        text = f"{self._command_text(command, download, variables, quiet=False)} && {copy}"
        assert command.span is not None
        return edits.Edit(command.span[0], command.span[1], _grouped(text, command))

    def _to_local_dir(self, command: Command, download: Download, variables: dict[str, str], target: str) -> Edit:
        """`mkdir -p DIR && hf_snapshot=$(HF_HOME=<build> hf download ... --quiet) && cp -rL "$hf_snapshot"/. DIR`;
        for single files, each file copied to DIR/FILE (one file: the CLI prints the file's path)."""
        fetch = f"{SNAPSHOT}=$({self._command_text(command, download, variables, quiet=True)})"
        if download.patterns:
            text = f'mkdir -p {target} && {fetch} && cp -rL "${SNAPSHOT}"/. {target}'
        else:
            folders = sorted({posixpath.join(target, posixpath.dirname(f)).rstrip("/") for f in download.files})
            source = ['"$hf_snapshot"'] if len(download.files) == 1 else [f'"$hf_snapshot"/{f}' for f in download.files]
            copies = " && ".join(f"cp -L {s} {target}/{f}" for s, f in zip(source, download.files, strict=True))
            text = f"mkdir -p {' '.join(folders)} && {fetch} && {copies}"
        assert command.span is not None
        return edits.Edit(command.span[0], command.span[1], _grouped(text, command))

    def _unguarded(self, run: RunContext, download: Command, consumer: Command) -> Finding:
        """`cp -rL "$(hf download ...)"/. DIR`: rewritten so that a failed download stops the RUN,
        and the download goes through the build-only cache."""
        message = ("a failed `hf download` leaves `$(...)` empty, so this command would go on with an empty path "
                   f"(`cp -rL /. DIR` copies the whole file system): keep the path in a variable first, "
                   f'`{SNAPSHOT}=$(hf download ...) && cp -rL "${SNAPSHOT}"/. DIR`')
        text = run.dockerfile.text
        home = hf_cache.build_home(run)
        if consumer.span is None or download.span is None or consumer.in_pipeline or home is None:
            return self.at(run, consumer, message)
        opening = text.rfind("$(", consumer.span[0], download.span[0])
        closing = text.find(")", download.span[1], consumer.span[1])
        if opening < 0 or closing < 0 or text[opening + 2:download.span[0]].strip() or \
                text[download.span[1]:closing].strip():
            return self.at(run, consumer, message)
        variables = hf_cache.build_variables(command_env(run, download), home.target)
        env = "".join(f"{k}={v} " for k, v in variables.items() if not any(
            a.name == k and a.value == v for a in download.assignments))
        guarded = (f"{SNAPSHOT}=$({env}{text[download.span[0]:closing + 1]} && {text[consumer.span[0]:opening]}"
                   f"${SNAPSHOT}{text[closing + 1:consumer.span[1]]}")
        stale = stale_mounts(run, home.target, "huggingface", ".cache/huggingface")
        mount = mount_fix(run, [home], self.options, self.manager, stale)
        return self.at(run, consumer, message, [*mount.edits, edits.Edit(*consumer.span, _grouped(guarded, consumer))],
                       mounts=mount.flags)

    @staticmethod
    def _advice() -> str:
        return (f"download through a cache mount at a build-only HF_HOME and copy the revision out with links "
                f"resolved in the same RUN, e.g. `{PATTERN}`; another user needs `/var/cache/huggingface-UID` "
                "with uid=/gid= on the mount")
