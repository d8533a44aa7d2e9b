"""The two real builders: dockerd (BuildKit) and buildah, driven through their CLIs.

Each engine knows how to build, run a command in an image, and forget its cache mounts.
``Dockerd.ensure`` starts a daemon only when none answers, and ``stop`` ends only that one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# A build here takes seconds; a hang (buildah's lost cache-mount lock, say) must fail, not stall CI.
BUILD_TIMEOUT = float(os.environ.get("CACHEFIX_TEST_BUILD_TIMEOUT", "180"))
DOCKER = "/usr/bin/docker"  # Debian's 20.10 client: the newer `docker` on PATH needs buildx
SYNTAX_LINE = re.compile(r"^\ufeff?#\s*syntax\s*=.*\n?", re.IGNORECASE)
# The OCI runtime copies itself into a sealed memfd before it starts a container; the kernel now and
# then refuses the seal with EBUSY. The container never started, so trying again is safe.
RUNTIME_START_FLAKE = "sealing memfd copy: Device or resource busy"
RUNTIME_START_TRIES = 3


class EngineUnavailable(RuntimeError):
    """No such builder can run here; the reason says why (the tests skip with it)."""


@dataclass(frozen=True)
class Build:
    """The outcome of one build: the tag and the builder's log (kept for failure messages)."""

    tag: str
    image_id: str
    seconds: float
    log: str


class BuildFailed(AssertionError):
    """A build exited non-zero or timed out; the message has the Dockerfile and the log's end."""

    def __init__(self, engine: str, dockerfile: str, log: str) -> None:
        tail = "\n".join(log.splitlines()[-60:])
        super().__init__(f"{engine} build failed\n--- Dockerfile ---\n{dockerfile}\n--- log tail ---\n{tail}")


class Engine(Protocol):
    name: str

    def build(self, context: Path, dockerfile: Path, tag: str, build_args: Mapping[str, str],
              timeout: float = BUILD_TIMEOUT) -> Build: ...

    def run(self, tag: str, argv: Sequence[str], user: str | None = None) -> subprocess.CompletedProcess[str]: ...

    def prune_cache_mounts(self) -> None: ...

    def has_image(self, tag: str) -> bool: ...

    def tag(self, source: str, *targets: str) -> None: ...

    def remove_images(self, refs: Sequence[str]) -> None: ...


def _run(argv: Sequence[str], timeout: float = 900, env: Mapping[str, str] | None = None,
         check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run in a new process group, so a timeout kills the builder's children too (and nothing else)."""
    with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})}, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(exc.cmd, timeout, out, err) from None
    result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result


def _run_starting_containers(argv: Sequence[str], timeout: float,
                             env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command that starts containers, again when the runtime failed to start one."""
    for _ in range(RUNTIME_START_TRIES - 1):
        result = _run(argv, timeout=timeout, env=env)
        if result.returncode == 0 or RUNTIME_START_FLAKE not in result.stdout + result.stderr:
            return result
    return _run(argv, timeout=timeout, env=env)


def _run_build(engine: str, dockerfile: str, argv: Sequence[str], timeout: float,
               env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return _run_starting_containers(argv, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        log = f"{exc.stdout or ''}{exc.stderr or ''}"
        raise BuildFailed(engine, dockerfile, f"{log}\n... still running: killed after {timeout:.0f}s") from None


def _build_args(build_args: Mapping[str, str]) -> list[str]:
    return [item for key, value in build_args.items() for item in ("--build-arg", f"{key}={value}")]


def _aux(context: Path, suffix: str) -> Path:
    """A scratch file beside (never inside) the build context, so `COPY . .` does not see it."""
    return context.parent / f"{context.name}{suffix}"


class Dockerd:
    """dockerd from Debian's docker.io; BuildKit through DOCKER_BUILDKIT=1."""

    name = "dockerd"

    def __init__(self, log_dir: Path) -> None:
        self._log_path = log_dir / "dockerd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def started_here(self) -> bool:
        return self._proc is not None

    def _answers(self) -> bool:
        try:
            return _run([DOCKER, "version", "--format", "{{.Server.Version}}"], timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def ensure(self, timeout: float = 60) -> Dockerd:
        """Use the running daemon, or start one (bridge and iptables off: the host network only)."""
        if not Path(DOCKER).exists() or shutil.which("dockerd") is None:
            raise EngineUnavailable("docker.io is not installed (dockerd, /usr/bin/docker)")
        if self._answers():
            return self
        if os.geteuid() != 0:
            raise EngineUnavailable("dockerd is not running and starting it needs root")
        log = self._log_path.open("ab")
        self._proc = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EngineUnavailable(f"dockerd exited with {self._proc.returncode}; see {self._log_path}")
            if self._answers():
                return self
            time.sleep(0.5)
        self.stop()
        raise EngineUnavailable(f"dockerd did not answer within {timeout:.0f}s; see {self._log_path}")

    def stop(self) -> None:
        """Stop the daemon only if this object started it."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def build(self, context: Path, dockerfile: Path, tag: str, build_args: Mapping[str, str],
              timeout: float = BUILD_TIMEOUT) -> Build:
        # A `# syntax=` line makes BuildKit pull a frontend image, and no registry is reachable:
        # dockerd builds a copy without it (its built-in frontend knows RUN --mount).
        text = dockerfile.read_text()
        local = _aux(context, ".dockerd.Dockerfile")
        local.write_text(SYNTAX_LINE.sub("", text, count=1))
        iidfile = _aux(context, ".iid")
        argv = [DOCKER, "build", "--network=host", "--progress=plain", "-f", str(local), "-t", tag,
                "--iidfile", str(iidfile),
                *_build_args(build_args), str(context)]
        start = time.monotonic()
        proc = _run_build(self.name, text, argv, timeout, env={"DOCKER_BUILDKIT": "1"})
        if proc.returncode != 0:
            raise BuildFailed(self.name, text, proc.stdout + proc.stderr)
        return Build(tag, iidfile.read_text().strip(), time.monotonic() - start, proc.stdout + proc.stderr)

    def run(self, tag: str, argv: Sequence[str], user: str | None = None) -> subprocess.CompletedProcess[str]:
        user_opt = ["--user", user] if user else []
        return _run_starting_containers([DOCKER, "run", "--rm", "--network=host", *user_opt, tag, *argv],
                                        timeout=120)

    def prune_cache_mounts(self) -> None:
        _run([DOCKER, "builder", "prune", "-af"], check=True)

    def has_image(self, tag: str) -> bool:
        return _run([DOCKER, "image", "inspect", tag]).returncode == 0

    def tag(self, source: str, *targets: str) -> None:
        for target in targets:
            _run([DOCKER, "tag", source, target], check=True)

    def remove_images(self, refs: Sequence[str]) -> None:
        if refs:
            _run([DOCKER, "rmi", "-f", *refs])

    def import_tarball(self, tarball: Path, tag: str, changes: Sequence[str]) -> None:
        argv = [DOCKER, "import", *[f"--change={c}" for c in changes], str(tarball), tag]
        _run(argv, check=True)


class Buildah:
    """buildah from Debian, chroot isolation, host network, layer cache on (as `podman build`)."""

    name = "buildah"
    CACHE_GLOB = "/var/tmp/buildah-cache*"

    def ensure(self) -> Buildah:
        if shutil.which("buildah") is None:
            raise EngineUnavailable("buildah is not installed")
        if os.geteuid() != 0:
            raise EngineUnavailable("the buildah tests run as root (chroot isolation, /var/tmp cache)")
        proc = _run(["buildah", "version"], timeout=30)
        if proc.returncode != 0:
            raise EngineUnavailable(f"buildah does not run: {proc.stderr.strip()}")
        return self

    def build(self, context: Path, dockerfile: Path, tag: str, build_args: Mapping[str, str],
              timeout: float = BUILD_TIMEOUT) -> Build:
        iidfile = _aux(context, ".iid")
        argv = ["buildah", "bud", "--isolation=chroot", "--network=host", "--layers", "--pull=never",
                "--iidfile", str(iidfile), "-f", str(dockerfile), "-t", tag, *_build_args(build_args),
                str(context)]
        start = time.monotonic()
        proc = _run_build(self.name, dockerfile.read_text(), argv, timeout)
        if proc.returncode != 0:
            raise BuildFailed(self.name, dockerfile.read_text(), proc.stdout + proc.stderr)
        return Build(tag, iidfile.read_text().strip(), time.monotonic() - start, proc.stdout + proc.stderr)

    def run(self, tag: str, argv: Sequence[str], user: str | None = None) -> subprocess.CompletedProcess[str]:
        ctr = _run(["buildah", "from", "--pull=never", tag], check=True).stdout.strip().splitlines()[-1]
        try:
            user_opt = ["--user", user] if user else []
            return _run_starting_containers(["buildah", "run", "--isolation=chroot", "--network=host",
                                             *user_opt, ctr, "--", *argv], timeout=120)
        finally:
            _run(["buildah", "rm", ctr])

    def prune_cache_mounts(self) -> None:
        for path in glob.glob(self.CACHE_GLOB):
            shutil.rmtree(path, ignore_errors=True)

    def has_image(self, tag: str) -> bool:
        return _run(["buildah", "inspect", "--type", "image", tag]).returncode == 0

    def tag(self, source: str, *targets: str) -> None:
        _run(["buildah", "tag", source, *targets], check=True)

    def remove_images(self, refs: Sequence[str]) -> None:
        if refs:
            _run(["buildah", "rmi", "-f", *refs])

    def pull_from_docker(self, tag: str) -> None:
        _run(["buildah", "pull", f"docker-daemon:{tag}"], check=True)

    def remove_dangling_since(self, image: str) -> None:
        """Remove the untagged layer images (``--layers``) that builds after ``image`` left."""
        ids = _run(["buildah", "images", "-q", "--filter", "dangling=true", "--filter", f"since={image}"]
                   ).stdout.split()
        if ids:
            _run(["buildah", "rmi", "-f", *ids])
