"""Getting one cache out of a builder and back in: dockerd (BuildKit) and buildah.

dockerd keeps cache mounts inside BuildKit, reachable only from a build: cachefix runs a
throwaway build whose one RUN mounts the cache with exactly the options that key it (id, uid,
gid, mode, as the project writes them; `sharing=locked` so no real build writes meanwhile) and
runs `tar` there. It goes to the daemon the real build uses (DOCKER_HOST, the current context),
with `--network=none`: the copy needs no network. A new build argument each time keeps a
layer-cache hit from standing in for the copy; `--no-cache` must not be used for that: BuildKit
then gives the RUN empty cache mounts and prunes the cached ones (moby/buildkit 7b1bae7, #1213,
#5306; moby/moby#41715).

buildah keeps each cache in a plain folder under $TMPDIR (default /var/tmp), named after the
mount in a way that changed three times (`cache_folders`); cachefix copies that folder.

An import fills only an empty cache: one that already holds files is the builder's own, at
least as new as the archive, and is left as it is (nothing cachefix did not make is deleted).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from cachefix.mounts.archive import ArchiveDamaged, ArchiveWriter, Progress, extract_new, remove_tree
from cachefix.mounts.identity import CacheIdentity

BUILD_TIMEOUT = float(os.environ.get("CACHEFIX_MOUNTS_TIMEOUT", "3600"))
CACHE_IN_BUILD = "/cachefix-cache"
NONCE_ARG = "CACHEFIX_COPY"  # a new value per copy: the RUN is never a layer-cache hit
# buildah before 1.29 keeps the lock of a `sharing=locked` mount inside the cache folder.
BUILDAH_LOCKFILE = "buildah-cache-lockfile"


class BuilderError(Exception):
    """The builder could not copy one cache; one line (with the builder's own last words)."""


class NoBuilder(Exception):
    """No builder to talk to, or the one asked for is missing; one line."""


@dataclass(frozen=True)
class CacheJob:
    """One cache to copy, with what is needed to reach it."""

    identity: CacheIdentity
    label: str
    images: tuple[str, ...] = ()  # FROM images of the stages that mount it (the first one present is used)


class Builder(Protocol):
    name: str

    def export(self, job: CacheJob, writer: ArchiveWriter) -> None:
        """Write the cache's files into `writer` (nothing when the cache is empty or missing)."""

    def import_(self, job: CacheJob, archive: Path, progress: Progress | None) -> bool:
        """Fill the cache from a verified archive; False when it already held files (kept as it is)."""


def _run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 30,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)


def _last_words(log: str, lines: int = 12) -> str:
    """The end of a builder's log, on one line, for an error message."""
    tail = [line.strip() for line in log.strip().splitlines()[-lines:] if line.strip()]
    return " | ".join(tail)[-1500:]


def mount_flag(identity: CacheIdentity, target: str) -> str:
    """`--mount=type=cache,...` for exactly this identity; BuildKit reads the flag as one CSV record."""
    if any(c in identity.id for c in "$\n\r\"'\\"):
        raise BuilderError(f"cache id {identity.id!r} has characters a throwaway Dockerfile cannot repeat exactly")
    # uid, gid and mode only when the project's mount writes them: written, they make another cache.
    owner = [f"uid={identity.uid}", f"gid={identity.gid}", f"mode={identity.mode}"] if identity.explicit else []
    fields = ["type=cache", f"id={identity.id}", f"target={target}", *owner, "sharing=locked"]
    return "--mount=" + ",".join(f'"{f}"' if "," in f else f for f in fields)


class Docker:
    """BuildKit inside dockerd, reached through the docker CLI (`CACHEFIX_DOCKER` names another binary)."""

    name = "docker"

    def __init__(self, helper_image: str | None = None, binary: str | None = None) -> None:
        self.binary = binary or os.environ.get("CACHEFIX_DOCKER") or "docker"
        self.helper_image = helper_image

    def answers(self) -> bool:
        if shutil.which(self.binary) is None:
            return False
        try:
            return _run([self.binary, "version", "--format", "{{.Server.Version}}"], timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def image_for(self, job: CacheJob) -> str:
        """An image to run `tar` in: --helper-image, else the first FROM image of the cache's stages
        that the daemon has."""
        if self.helper_image:
            return self.helper_image
        for image in job.images:
            if self._has_image(image):
                return image
        tried = ", ".join(job.images) or "no image (its stages are FROM scratch)"
        raise BuilderError(f"no image to run tar in: the daemon has none of {tried}; `docker pull` one, or pass "
                           "--helper-image IMAGE (any image with sh and tar, e.g. debian:bookworm-slim)")

    def _has_image(self, image: str) -> bool:
        try:
            return _run([self.binary, "image", "inspect", "--format", "{{.Id}}", image]).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _build(self, context: Path, dockerfile: str, wanted: str, consume: Callable[[IO[bytes]], None]) -> None:
        """Build, streaming the final stage out (`--output -`) and handing its file `wanted` to
        `consume`. BuilderError with the builder's last words when the build fails."""
        (context / "Dockerfile").write_text(dockerfile)
        argv = [self.binary, "build", "--network=none", "--progress=plain", "--output", "-",
                "--build-arg", f"{NONCE_ARG}={uuid.uuid4().hex}", str(context)]
        found, problem = False, None
        with tempfile.TemporaryFile() as log, subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=log, env={**os.environ, "DOCKER_BUILDKIT": "1"}) as proc:
            assert proc.stdout is not None
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as outer:
                    for member in outer:
                        if member.name.lstrip("./") == wanted and member.isreg():
                            found = True
                            consume(outer.extractfile(member))  # type: ignore[arg-type]
            except (tarfile.TarError, ArchiveDamaged) as exc:
                problem = exc
            while proc.stdout.read(1 << 20):
                pass
            try:
                proc.wait(timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise BuilderError(f"the throwaway build took more than {BUILD_TIMEOUT:.0f} s") from None
            log.seek(0)
            words = _last_words(log.read().decode(errors="replace"))
        if proc.returncode != 0:
            raise BuilderError(f"the throwaway build failed (exit {proc.returncode}; its image needs sh and tar, "
                               f"--helper-image names another): {words}")
        if isinstance(problem, ArchiveDamaged):
            raise BuilderError(str(problem))
        if problem is not None or not found:
            raise BuilderError(f"the throwaway build gave no {wanted} ({problem or 'not in its output'})")

    def export(self, job: CacheJob, writer: ArchiveWriter) -> None:
        dockerfile = (f"FROM {self.image_for(job)} AS dump\nUSER 0:0\nWORKDIR /cachefix-out\nARG {NONCE_ARG}\n"
                      f"RUN {mount_flag(job.identity, CACHE_IN_BUILD)} "
                      f'["tar", "-cf", "/cachefix-out/cache.tar", "--numeric-owner", "-C", "{CACHE_IN_BUILD}", "."]\n'
                      "FROM scratch\nCOPY --from=dump /cachefix-out/cache.tar /\n")
        context = Path(tempfile.mkdtemp(prefix="cachefix-export-"))
        try:
            self._build(context, dockerfile, "cache.tar", writer.add_stream)
        finally:
            shutil.rmtree(context, ignore_errors=True)

    def import_(self, job: CacheJob, archive: Path, progress: Progress | None) -> bool:
        fill = (f'if [ -n "$(ls -A {CACHE_IN_BUILD})" ]; then echo kept > /cachefix-out/result; '
                f"else tar -xzpf /cachefix-in/cache.tar.gz --numeric-owner -C {CACHE_IN_BUILD}; "
                "echo filled > /cachefix-out/result; fi")
        dockerfile = (f"FROM {self.image_for(job)} AS fill\nUSER 0:0\nWORKDIR /cachefix-out\nARG {NONCE_ARG}\n"
                      f"RUN {mount_flag(job.identity, CACHE_IN_BUILD)} "
                      "--mount=type=bind,source=cache.tar.gz,target=/cachefix-in/cache.tar.gz \\\n"
                      f"    set -e; {fill}\n"
                      "FROM scratch\nCOPY --from=fill /cachefix-out/result /\n")
        context = Path(tempfile.mkdtemp(prefix=".cachefix-tmp-import-", dir=archive.parent))
        result: list[bytes] = []
        try:
            _link_or_copy(archive, context / "cache.tar.gz")
            self._build(context, dockerfile, "result", lambda stream: result.append(stream.read()))
        finally:
            remove_tree(context)
        if progress is not None:
            progress(archive.stat().st_size)
        return result == [b"filled\n"]


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


class Buildah:
    """buildah's cache folders, copied directly (buildah has no daemon; its builds read the folders)."""

    name = "buildah"

    def __init__(self, version: tuple[int, int] | None = None, temp_dir: str | None = None,
                 uid: int | None = None) -> None:
        self._version = version
        self.temp_dir = temp_dir or os.environ.get("TMPDIR") or "/var/tmp"
        self.uid = os.getuid() if uid is None else uid

    @staticmethod
    def installed() -> bool:
        return shutil.which("buildah") is not None

    @property
    def version(self) -> tuple[int, int]:
        if self._version is None:
            try:
                text = _run(["buildah", "--version"]).stdout
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise NoBuilder(f"buildah does not run: {exc}") from None
            match = re.search(r"version (\d+)\.(\d+)", text)
            if not match:
                raise NoBuilder(f"cannot read buildah's version from {text.strip()!r}")
            self._version = (int(match[1]), int(match[2]))
        return self._version

    def cache_folders(self, identity: CacheIdentity) -> list[Path]:
        """Where this buildah keeps the cache, most likely first (internal/volumes, GetCacheMount):
        - before 1.29: $TMPDIR/buildah-cache/<id>;
        - 1.29 (buildah#4421): $TMPDIR/buildah-cache-<uid>/<id>, the id joined as a path;
        - security releases of 1.29 to 1.39 and 1.40 itself: the first 16 hex digits of the id's
          SHA-256 instead of the id (not letting a Dockerfile choose a host path);
        - 1.40 (buildah#5978): of `<id>:<uid>:<gid>`, so the owner is part of the cache, as in BuildKit.
        The mode is never part of it (buildah applies it when it makes the folder)."""
        base = Path(self.temp_dir)
        per_user = base / f"buildah-cache-{self.uid}"
        as_path = posixpath.normpath("/" + identity.id).lstrip("/")  # what SecureJoin keeps of `../x`
        if not as_path:
            raise BuilderError(f"cache id {identity.id!r} names no folder")

        def digest(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()[:16]
        if self.version >= (1, 40):
            return [per_user / digest(f"{identity.id}:{identity.uid}:{identity.gid}")]
        if self.version >= (1, 29):
            return [per_user / as_path, per_user / digest(identity.id)]
        return [base / "buildah-cache" / as_path]

    def folder(self, identity: CacheIdentity) -> Path:
        """The cache's folder: the first candidate that exists, else the one this version makes."""
        candidates = self.cache_folders(identity)
        return next((c for c in candidates if c.is_dir() and not c.is_symlink()), candidates[0])

    def export(self, job: CacheJob, writer: ArchiveWriter) -> None:
        folder = self.folder(job.identity)
        if folder.is_dir():
            writer.add_tree(folder, skip=lambda name: name == f"./{BUILDAH_LOCKFILE}")

    def import_(self, job: CacheJob, archive: Path, progress: Progress | None) -> bool:
        folder = self.folder(job.identity)
        if folder.is_dir() and any(entry.name != BUILDAH_LOCKFILE for entry in os.scandir(folder)):
            return False
        folder.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if folder.is_dir():
            shutil.rmtree(folder)  # empty but for buildah's lock file: buildah makes it again
        try:
            extract_new(archive, folder, job.label, progress)
        except OSError as exc:
            raise BuilderError(f"cannot unpack into {folder}: {exc.strerror or exc}") from None
        return True


def choose(engine: str, helper_image: str | None) -> tuple[Builder, str]:
    """The builder `--engine` asks for, and why it was chosen (for the output); NoBuilder when absent."""
    docker = Docker(helper_image)
    if engine in ("docker", "auto") and docker.answers():
        return docker, "docker (the daemon answered)" if engine == "auto" else "docker"
    if engine == "docker":
        raise NoBuilder(f"the docker daemon does not answer (`{docker.binary} version` failed)")
    if Buildah.installed():
        return Buildah(), "buildah (no docker daemon answered)" if engine == "auto" else "buildah"
    if engine == "buildah":
        raise NoBuilder("buildah is not installed")
    raise NoBuilder("no builder: no docker daemon answers and buildah is not installed")
