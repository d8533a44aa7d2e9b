"""CF302 hf-python-cache-mount: HuggingFace downloads by the Python a RUN runs."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from cachefix.model import Edit, Finding
from cachefix.rewriter import edits
from cachefix.rewriter.context import RunContext, command_env, heredoc_offsets
from cachefix.rewriter.dockerfile import Heredoc
from cachefix.rewriter.mounts import cache_mount_covering, existing_mounts
from cachefix.rewriter.shell import REMOVABLE_JOINS, Command, Word
from cachefix.rules import hf_cache
from cachefix.rules.placement import mount_fix
from cachefix.rules.rule import RunRule
from cachefix.rules.words import set_for_command

NAMES = ("snapshot_download", "hf_hub_download", "from_pretrained", "pipeline", "SentenceTransformer", "CrossEncoder")
PYTHON = re.compile(r"(?:^|/)python[0-9.]*$")
SHEBANG = re.compile(r"#!((?:/usr/bin/env[ \t]+)?\S*python[0-9.]*(?:[ \t]+-[A-Za-z]+)*)[ \t]*\n")
HEREDOC = re.compile(r"[ \t]*(?:-[ \t]+)?<<-?[ \t]*([\"']?)(\w+)\1")
# Variables that would send the download elsewhere than HF_HOME's hub: unset for the command.
REDIRECTS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "SENTENCE_TRANSFORMERS_HOME")
SENTENCE = ("SentenceTransformer", "CrossEncoder")
PATTERN = ("RUN --mount=type=cache,target=/var/cache/huggingface HF_HOME=/var/cache/huggingface python -c "
           "\"import shutil; from huggingface_hub import snapshot_download; "
           "shutil.copytree(snapshot_download('ORG/NAME', revision='SHA'), '/models/NAME')\"")


@dataclass(frozen=True)
class Site:
    """Python code the RUN runs, and where a fix writes around it."""

    command: Command | None  # the python command; None: a `RUN <<EOF` script with a python shebang
    code: str
    # The file offset of each character of the code, when the shell hands Python the text the
    # file holds (Dockerfile line continuations in between are fine); None otherwise.
    offsets: Sequence[int] | None
    program: int  # where the program word starts (HF_HOME= goes there)
    end: int  # where the copy-out is appended (after the command, or after its `<<EOF`)
    interpreter: str = ""  # for a shebang script: the interpreter the RUN line now names


@dataclass(frozen=True)
class Download:
    """One repository (or one file of it) a call downloads, and where the image reads it."""

    repo_id: str
    repo_type: str
    revision: str
    filename: str | None
    local_dir: str | None
    cache: str | None  # a literal cache_dir / cache_folder
    drop: str | None  # the keyword argument the fix removes
    cache_variable: str | None = None  # the variable naming its cache when no argument does


class HuggingFacePythonRule(RunRule):
    """
    ## What it does
    Finds HuggingFace downloads in the Python a RUN runs (`python -c "..."`, `python - <<EOF`,
    `python <<EOF` and `RUN <<EOF` scripts with a python shebang): `snapshot_download`,
    `hf_hub_download`, `X.from_pretrained` (transformers' Auto classes, diffusers pipelines),
    `pipeline(model=...)`, `SentenceTransformer(...)` and `CrossEncoder(...)`, and makes them
    download once, with the model still in the image where the code reads it.

    ## Why is this bad?
    The download runs on every rebuild of the layer: gigabytes, each time. A cache mount on
    the HuggingFace cache alone keeps the model out of the image (it lands in the mount), so
    the container downloads it again at run time, or fails offline.

    ## Example
    ```dockerfile
    RUN python -c "from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('org/model')"
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/var/cache/huggingface HF_HOME=/var/cache/huggingface python -c "from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('org/model')" && (src=/var/cache/huggingface/hub/models--org--model; dst=/root/.cache/huggingface/hub/models--org--model; rev=main; ...)
    ```

    The code runs with `HF_HOME` on a cache mount at a build-only path (another user gets
    `/var/cache/huggingface-UID` with its uid), then the revision it downloaded is copied, as
    regular files, to where the image reads it: its HuggingFace cache (`HF_HUB_CACHE`,
    `HF_HOME`, `~/.cache/huggingface`), a literal `cache_dir=`/`cache_folder=` (or
    `SENTENCE_TRANSFORMERS_HOME`), or a literal `local_dir=`. A bare SentenceTransformer
    name (`all-MiniLM-L6-v2`) is `sentence-transformers/all-MiniLM-L6-v2`. The Python is read
    with libcst; where its repository ids, revisions and folders are not literals, or the
    user's uid is unknown, the finding shows the safe pattern instead.

    ## Fix safety
    The image holds the model where it did, and loads it offline (`HF_HUB_OFFLINE=1`). What
    differs: the copy is made after the Python ends, and `cache_dir=`, `cache_folder=` and
    `local_dir=` arguments are removed from the code (the download goes to the build cache;
    the copy puts the files there), so a script that reads those folders itself, or keeps
    the path a download returns for later, is reported rather than rewritten. A cache holds
    the revision's files the build cache has, which may be more than this code fetched
    (other RUNs share the cache); a `local_dir` gets the files without the
    `.cache/huggingface` metadata huggingface_hub writes there. A `RUN <<EOF` script runs as
    `python - <<EOF` (its shebang's interpreter reading the script from standard input).
    """  # noqa: E501

    code = "CF302"
    name = "hf-python-cache-mount"
    manager = "hf"
    summary = "HuggingFace download in Python run by a RUN, without a cache mount"
    triggers = NAMES

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        if not run.shell_form:
            return
        for site in _sites(run):
            if any(name in site.code for name in NAMES):
                yield from self._site(run, site)

    def _site(self, run: RunContext, site: Site) -> Iterator[Finding]:
        from cachefix.rules.python_code import calls

        found = calls(site.code, NAMES)
        if found is None:
            return
        downloads: list[Download] = []
        for call in found:
            download = _download(call)
            if isinstance(download, str):
                yield self._advice(run, site, download)
                return
            if download is not None:
                downloads.append(download)
        if downloads:
            yield from self._fix(run, site, downloads, found)

    def _fix(self, run: RunContext, site: Site, downloads: list[Download], found: list) -> Iterator[Finding]:
        mount = hf_cache.build_home(run)
        if mount is None:
            yield self._advice(run, site, f"the uid of user {run.user} is unknown, so the cache mount cannot be "
                                          "given to it (give the user a numeric uid)")
            return
        build = mount.target
        env = command_env(run, site.command) if site.command is not None else dict(run.env)
        if env.get("HF_HOME") == build and cache_mount_covering(existing_mounts(run.instruction), build):
            return  # already downloads through the build cache
        problem = _unfixable(site)
        copies: dict[str, None] = {}
        python_edits: list[Edit] = []
        for download in downloads:
            copy = _copy(download, build, env, run.home)
            if copy is None:
                problem = problem or (f"where the image reads {download.repo_id} at run time is not shown by the "
                                      "file, or is not a plain path")
                break
            copies[copy] = None
            if download.drop is not None:
                edit = _drop(site, download, found)
                if edit is None:
                    problem = problem or (f"the `{download.drop}=` argument cannot be removed from the code exactly "
                                          "(the shell changes its text, or the code uses that folder itself)")
                    break
                python_edits.append(edit)
        if problem:
            yield self._advice(run, site, problem)
            return
        unset = [name for name in REDIRECTS if name in env]
        prefix = _prefix(run, site, build, unset)
        if prefix is None:
            return
        placed = mount_fix(run, [mount], self.options, self.manager)
        tail = edits.insert(site.end, " && " + " && ".join(copies))
        repos = ", ".join(dict.fromkeys(d.repo_id for d in downloads))
        where = ", ".join(dict.fromkeys(d.local_dir or d.cache or "the image's HuggingFace cache" for d in downloads))
        yield self.finding(run.dockerfile, _span(run, site),
                           f"Python downloads {repos} from the HuggingFace Hub on every rebuild: download through a "
                           f"cache mount on a build-only HF_HOME ({build}) and copy the files to {where}",
                           [*placed.edits, *python_edits, prefix, tail], mounts=placed.flags)

    def _advice(self, run: RunContext, site: Site, reason: str) -> Finding:
        return self.finding(run.dockerfile, _span(run, site), (
            f"Python downloads from the HuggingFace Hub on every rebuild, and cachefix cannot rewrite it: {reason}. "
            "Download through a cache mount on a build-only HF_HOME and copy what the image needs out of it, links "
            f"resolved, in the same RUN, e.g. `{PATTERN}`, then load the model from /models/NAME"))


def _sites(run: RunContext) -> Iterator[Site]:
    """The Python programs the RUN runs with their code: `python -c`, `python [-] <<EOF`, and a
    `RUN <<EOF` script whose shebang names python."""
    text = run.dockerfile.text
    heredocs = {h.name: h for h in run.instruction.heredocs}
    start = run.instruction.unwrapped.args_span[0]
    head = HEREDOC.match(text, start)
    if head and head.group(2) in heredocs and not text[head.end():text.find("\n", head.end())].strip():
        heredoc = heredocs[head.group(2)]
        shebang = SHEBANG.match(heredoc.content)
        if shebang:
            yield Site(None, heredoc.content, _unchanged_body(heredoc), start, head.end(), shebang.group(1))
    for command in run.commands:
        if not PYTHON.search(command.name) or command.span is None or not command.words[0].span:
            continue
        program = command.words[0].span[0]
        values = command.values()
        if "-c" in values and values.index("-c") + 1 < len(values):
            word = command.words[values.index("-c") + 1]
            if word.value is not None and word.span is not None:
                yield Site(command, word.value, _script_offsets(run, word), program, command.span[1])
            continue
        redirect = HEREDOC.match(text, command.span[1])
        if redirect and redirect.group(2) in heredocs:
            heredoc = heredocs[redirect.group(2)]
            yield Site(command, heredoc.content, _unchanged_body(heredoc), program, redirect.end())


def _script_offsets(run: RunContext, word: Word) -> Sequence[int] | None:
    """Where each character of a quoted `-c` script is in the file, if the shell passes the
    quoted text to Python as it is (no escapes or expansions). The RUN line's text is read with
    its Dockerfile line continuations removed, as the shell gets it, so a script written over
    several lines with `\\` at their ends maps too."""
    raw = word.raw
    if word.span is None or len(raw) < 2 or raw[0] != raw[-1] or raw[0] not in "'\"":
        return None
    inner = raw[1:-1]
    if inner != word.value or (raw[0] == '"' and any(c in inner for c in "$`\\")):
        return None
    target = run.instruction.unwrapped
    sources = [target.shell_source(), *((h.content, heredoc_offsets(h)) for h in target.heredocs)]
    for text, offsets in sources:
        if offsets is None:
            continue
        at = bisect_left(offsets, word.span[0])
        if at < len(offsets) and offsets[at] == word.span[0] and text[at:at + len(raw)] == raw:
            return offsets[at + 1:at + len(raw) - 1]
    return None


def _unchanged_body(heredoc: Heredoc) -> Sequence[int] | None:
    """Where a heredoc body's characters are in the file, if the shell passes it on unchanged."""
    if heredoc.expand and any(c in heredoc.content for c in "$`\\"):
        return None
    return heredoc_offsets(heredoc)


def _unfixable(site: Site) -> str | None:
    command = site.command
    if command is not None and (command.in_pipeline or command.joined_before not in REMOVABLE_JOINS
                                or command.joined_after not in REMOVABLE_JOINS):
        return "the command is part of a pipeline or an `||` list, where the copy cannot be appended"
    return None


def _download(call: object) -> Download | str | None:
    """What a call downloads; a reason it cannot be known (str); None when it downloads nothing."""
    from cachefix.rules.python_code import Call

    assert isinstance(call, Call)
    if call.unpacked:
        return f"`{call.function}(...)` takes `*args`/`**kwargs`"
    if call.function == "pipeline":
        if not call.given(1, "model"):
            return "`pipeline()` without `model=` downloads the task's default model"
        repo = call.argument(1, "model")
    elif call.function in ("snapshot_download", "hf_hub_download"):
        repo = call.argument(0, "repo_id")
    elif call.function == "from_pretrained":
        if "local_files_only" in call.keywords:
            return None
        repo = call.argument(0, "pretrained_model_name_or_path")
    else:
        repo = call.argument(0, "model_name_or_path")
    if repo is not None and repo.startswith(("/", ".", "~")):
        return None  # a folder in the image
    if call.function == "SentenceTransformer" and repo is not None and "/" not in repo:
        repo = f"sentence-transformers/{repo}"
    filename = call.argument(1, "filename") if call.function == "hf_hub_download" else None
    if call.function == "hf_hub_download" and filename is not None and "subfolder" in call.keywords:
        subfolder = call.keywords["subfolder"]
        filename = None if subfolder is None else f"{subfolder}/{filename}"
    cache_key = "cache_folder" if call.function in SENTENCE else "cache_dir"
    keywords = {key: call.keywords.get(key, default) for key, default in
                (("revision", "main"), ("repo_type", "model"), ("local_dir", ""), (cache_key, ""))}
    values = [repo, *keywords.values(), *([filename] if call.function == "hf_hub_download" else [])]
    if any(v is None or (v and not hf_cache.is_plain(v)) for v in values):
        return (f"the repository id, revision, file or folder of `{call.function}(...)` is not a literal of plain "
                "characters")
    local_dir, cache = keywords["local_dir"] or None, keywords[cache_key] or None
    if local_dir and cache:
        return f"`{call.function}(...)` has both `local_dir=` and `{cache_key}=`"
    drop = "local_dir" if local_dir else cache_key if cache else None
    if drop == "local_dir" and not call.statement:
        return "the code uses the path `local_dir=` makes the download return"
    assert repo is not None
    return Download(repo, keywords["repo_type"] or "model", keywords["revision"] or "main", filename, local_dir,
                    cache, drop, "SENTENCE_TRANSFORMERS_HOME" if call.function in SENTENCE else None)


def _copy(download: Download, build: str, env: dict[str, str], home: str | None) -> str | None:
    """The shell command that puts what `download` fetched where the image reads it."""
    folder = hf_cache.repo_folder(download.repo_id, download.repo_type)
    if download.local_dir:
        return hf_cache.copy_to_dir(build, folder, download.revision, download.local_dir, download.filename)
    hub = download.cache or (env.get(download.cache_variable) if download.cache_variable else None)
    hub = hub or hf_cache.runtime_hub(env, home)
    if not hf_cache.is_plain(hub):
        return None
    return hf_cache.copy_out(build, hub, folder, download.revision, [download.filename] if download.filename else ())


def _drop(site: Site, download: Download, found: list) -> Edit | None:
    """The file edit removing the argument `download.drop` from its call (None: not exactly possible)."""
    from cachefix.rules.python_code import without_keyword

    if site.offsets is None or download.drop is None:
        return None
    value = download.local_dir or download.cache or ""
    if site.code.count(value) != 1:
        return None  # the code names that folder elsewhere: it may read it before the copy is made
    call = next(c for c in found if c.keywords.get(download.drop) == value)
    span = without_keyword(site.code, call, download.drop, NAMES)
    # The file range may hold line continuations between the characters: they go with the argument.
    return None if span is None else edits.delete((site.offsets[span[0]], site.offsets[span[1] - 1] + 1))


def _prefix(run: RunContext, site: Site, build: str, unset: list[str]) -> Edit | None:
    """`HF_HOME=<build> ` before the program (with `env -u` for variables that would redirect the
    download); a shebang script becomes `HF_HOME=<build> <interpreter> - <<EOF`."""
    if site.command is not None:
        return set_for_command(site.command, run.shell_form, {"HF_HOME": build}, unset)
    env = "env " + "".join(f"-u {name} " for name in unset) if unset else ""
    return edits.insert(site.program, f"{env}HF_HOME={build} {site.interpreter} - ")


def _span(run: RunContext, site: Site) -> tuple[int, int]:
    if site.command is not None and site.command.span is not None:
        return site.command.span
    return run.instruction.span
