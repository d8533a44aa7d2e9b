"""Issue 8.16, 8.17 and 8.19 (`--extract` part): archives as JDK, Node and Go ship them.

`fetch --extract RELATIVE_DIR` of a tarball holding symlinks used to fail with an internal
error; parent folders an archive does not list were made 0700; unpacking onto a symlink to a
folder named cachefix's private temp folder in its error.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.downloads import conftest
from tests.downloads.conftest import FaultServer, cachefix

server, cache_dir = conftest.server, conftest.cache_dir  # the download tests' fixtures, shared


def jdk_like() -> bytes:
    """A tarball with a relative symlink and no entries for its folders (as many are built)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("jdk-21/lib/bin/java")
        info.size, info.mode = 4, 0o755
        tar.addfile(info, io.BytesIO(b"java"))
        link = tarfile.TarInfo("jdk-21/bin/java")
        link.type, link.linkname = tarfile.SYMTYPE, "../lib/bin/java"
        tar.addfile(link)
    return buffer.getvalue()


def umask_022() -> None:
    os.umask(0o022)


def test_extract_into_a_relative_folder_keeps_symlinks(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    done = cachefix("fetch", server.add("/jdk.tgz", jdk_like()), "--extract", "tools", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    java = tmp_path / "tools" / "jdk-21" / "bin" / "java"
    assert java.is_symlink() and os.readlink(java) == "../lib/bin/java" and java.read_bytes() == b"java"


def test_unlisted_parent_folders_are_0755_less_umask(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cachefix", "fetch", server.add("/jdk.tgz", jdk_like()),
                           "--extract", str(tmp_path / "tools")], capture_output=True, text=True, timeout=60,
                          preexec_fn=umask_022)
    assert done.returncode == 0, done.stderr
    for folder in ("jdk-21", "jdk-21/lib", "jdk-21/lib/bin", "jdk-21/bin"):
        assert stat.S_IMODE((tmp_path / "tools" / folder).stat().st_mode) == 0o755, folder


def test_shell_drop_in_extracts_into_a_relative_folder(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    script = 'eval "$("$PYTHON" -m cachefix shell-init bash)" && cached_download_extract "$URL" ./tools'
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": sys.executable, "DOWNLOAD_CACHE": str(cache_dir),
                               "URL": server.add("/jdk.tgz", jdk_like())})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "tools" / "jdk-21" / "bin" / "java").read_bytes() == b"java"


def test_extract_onto_a_symlink_to_a_folder_goes_into_that_folder(server: FaultServer, cache_dir: Path,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    done = cachefix("fetch", server.add("/jdk.tgz", jdk_like()), "--extract", "link", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "jdk-21" / "bin" / "java").is_symlink()


def test_an_extract_error_never_names_the_private_temp_folder(server: FaultServer, cache_dir: Path,
                                                              tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "jdk-21").write_text("a file where the archive has a folder")
    (tmp_path / "link").symlink_to("real")
    done = cachefix("fetch", server.add("/jdk.tgz", jdk_like()), "--extract", "link", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert ".cachefix" not in done.stderr and "jdk-21" in done.stderr
    assert sorted(os.listdir(tmp_path / "real")) == ["jdk-21"]


def test_extract_into_the_current_folder_keeps_it_as_it_was(server: FaultServer, cache_dir: Path,
                                                            tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir(mode=0o750)
    work.chmod(0o750)
    (work / "mine.txt").write_text("mine")
    done = cachefix("fetch", server.add("/jdk.tgz", jdk_like()), "--extract", ".", cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "jdk-21" / "bin" / "java").read_bytes() == b"java" and (work / "mine.txt").read_text() == "mine"
    assert stat.S_IMODE(work.stat().st_mode) == 0o750
    assert sorted(os.listdir(work)) == ["jdk-21", "mine.txt"]  # no temp folder left behind


def test_extract_into_an_empty_name_is_a_usage_error(server: FaultServer, cache_dir: Path, tmp_path: Path) -> None:
    done = cachefix("fetch", server.add("/jdk.tgz", jdk_like()), "--extract", "", cwd=tmp_path)
    assert done.returncode == 2 and "--extract needs a folder" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["cache"]
