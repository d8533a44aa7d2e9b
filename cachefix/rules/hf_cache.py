"""Where HuggingFace downloads go during a build, and how one revision is copied out of there.

A model must be in the image (the app loads it offline), and it must not be downloaded on every
rebuild. So the download runs with `HF_HOME` on a cache mount at a build-only path
(`/var/cache/huggingface`, or `/var/cache/huggingface-UID` for another user: no mount point is
left where the image reads its cache at run time, buildkit#3153), and then exactly the revision
the command asked for is copied to where the image reads it: its HuggingFace cache (the RUN's
`HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME` or `~/.cache/huggingface`) or a `--local-dir`.

The copy resolves the cache's symlinks (`cp -RL`): the snapshot's files link to `../../blobs`,
and with xet to a cache-wide blob store, none of which is in the image. huggingface_hub and
transformers load regular files in `snapshots/<sha>/` offline, given `refs/<revision>` holding
the sha without a newline (a newline breaks `hf_hub_download` offline).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence

from cachefix.rewriter.context import RunContext
from cachefix.rewriter.mounts import CacheMount
from cachefix.rules.user_cache import Cache

BUILD_HOME = "/var/cache/huggingface"
# Where the image reads its HuggingFace cache at run time (the hub folder).
RUNTIME_HUB = Cache(("$HF_HUB_CACHE", "$HUGGINGFACE_HUB_CACHE", "$HF_HOME/hub", "$XDG_CACHE_HOME/huggingface/hub",
                     "~/.cache/huggingface/hub"))
REPO_TYPES = {"model": "models", "dataset": "datasets", "space": "spaces"}


def build_home(run: RunContext) -> CacheMount | None:
    """The cache mount the download runs with as `HF_HOME`; None for a user whose uid is unknown."""
    if run.is_root:
        return CacheMount(BUILD_HOME)
    if run.uid is None:
        return None
    return CacheMount(f"{BUILD_HOME}-{run.uid}", uid=run.uid, gid=run.gid)


def runtime_hub(env: Mapping[str, str], home: str | None) -> str | None:
    """Where the image's code looks for the hub cache at run time (None: the file does not show)."""
    return RUNTIME_HUB.resolve(None, env, home)[0]


def repo_folder(repo_id: str, repo_type: str = "model") -> str:
    """The cache's folder of a repository: `models--org--name`."""
    return f"{REPO_TYPES.get(repo_type, 'models')}--{repo_id.replace('/', '--')}"


PLAIN = re.compile(r"[A-Za-z0-9._/-]+")
# Variables that take the hub or xet cache away from HF_HOME: set to the build home too, when the command sees them.
MOVES = {"HF_HUB_CACHE": "hub", "HUGGINGFACE_HUB_CACHE": "hub", "HF_XET_CACHE": "xet"}


def is_plain(value: str | None) -> bool:
    """A value that may go into shell text as it is (a repo id, a revision, a path)."""
    return (value is not None and PLAIN.fullmatch(value) is not None and not value.startswith("-")
            and ".." not in value.split("/"))


def build_variables(env: Mapping[str, str], build: str) -> dict[str, str]:
    """What the downloading command is run with: `HF_HOME` at the build home, and the hub and xet
    caches there too when the command's environment moves them elsewhere (they win over HF_HOME)."""
    variables = {"HF_HOME": build}
    for name, sub in MOVES.items():
        if name in env:
            variables["HF_HUB_CACHE" if sub == "hub" else name] = f"{build}/{sub}"
    return variables


def _revision_sha(build: str, folder: str, revision: str) -> str:
    """Sets `src` (the repository in the build cache), `rev` and `sha` (the commit `rev` names
    there). Whether `rev` is a commit is known when the command is written, so the text has no
    `${#rev}`, which BuildKit's heredoc detection cannot read (`RUN python - <<EOF && ...`)."""
    sha = revision if re.fullmatch(r"[0-9a-f]{40}", revision) else '$(cat "$src/refs/$rev")'
    return f"src={build}/hub/{folder}; rev={revision}; sha={sha}"


def _write_ref(hub: str, folder: str) -> str:
    return (f'{{ [ "$sha" = "$rev" ] || {{ mkdir -p "$(dirname "{hub}/{folder}/refs/$rev")" && '
            f"printf '%s' \"$sha\" > \"{hub}/{folder}/refs/$rev\"; }}; }}")


def copy_out(build: str, hub: str, folder: str, revision: str = "main", files: Sequence[str] = ()) -> str:
    """A shell command (POSIX sh, in a subshell so its variables stay there) that copies one
    revision of `folder` from the build cache `build` (an `HF_HOME`) into the hub cache `hub`, as
    regular files, with `refs/<revision>` written; it fails when the revision is not there.
    `files`: only those (`hf download REPO FILE...`, `hf_hub_download`): the build cache's snapshot
    may hold more, which other builds downloaded. The text may follow a heredoc's `<<EOF`."""
    if files:
        folders = sorted({posixpath.dirname(f) for f in files} - {""})
        mkdir = " ".join(['"$dst"', *(f'"$dst/{d}"' for d in folders)])
        copy = f"mkdir -p {mkdir} && " + " && ".join(f'cp -L "$src/snapshots/$sha/{f}" "$dst/{f}"' for f in files)
    else:
        copy = 'mkdir -p "$(dirname "$dst")" && rm -rf "$dst" && cp -RL "$src/snapshots/$sha" "$dst"'
    return (f"({_revision_sha(build, folder, revision)} && dst={hub}/{folder}/snapshots/$sha && {copy} && "
            f"{_write_ref(hub, folder)})")


def copy_to_dir(build: str, folder: str, revision: str, destination: str, filename: str | None = None) -> str:
    """A shell command copying the revision's files (or one file) from the build cache into a
    `local_dir` as regular files (`cp -RL`): what the download would have put there."""
    if filename is None:
        copy = f'mkdir -p {destination} && cp -RL "$src/snapshots/$sha"/. {destination}'
    else:
        copy = (f'mkdir -p "$(dirname {destination}/{filename})" && '
                f'cp -L "$src/snapshots/$sha/{filename}" {destination}/{filename}')
    return f"({_revision_sha(build, folder, revision)} && {copy})"
