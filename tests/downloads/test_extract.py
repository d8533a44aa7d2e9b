"""Unpacking: good archives land whole, hostile or broken ones change nothing and name the member."""

from __future__ import annotations

import bz2
import io
import lzma
import os
import re
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cachefix.downloads.errors import ArchiveError
from cachefix.downloads.extract import Limits, extract

TarEntry = Callable[[tarfile.TarFile], None]


def make_tar(path: Path, *entries: TarEntry, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for add in entries:
            add(tar)
    return path


def file(name: str, data: bytes = b"data", mode: int = 0o644) -> TarEntry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))
    return add


def special(name: str, kind: bytes, target: str = "") -> TarEntry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        tar.addfile(info)
    return add


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_tar_in_every_compression(tmp_path: Path, mode: str) -> None:
    archive = make_tar(tmp_path / "a", file("pkg/bin/tool", b"#!/bin/sh\n", 0o4755), file("pkg/README"),
                       special("pkg/link", tarfile.SYMTYPE, "README"),
                       special("pkg/hard", tarfile.LNKTYPE, "pkg/README"), mode=mode)
    extract(archive, tmp_path / "out")
    tool = tmp_path / "out" / "pkg" / "bin" / "tool"
    assert tool.read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o755  # setuid dropped, executable kept
    assert os.readlink(tmp_path / "out" / "pkg" / "link") == "README"
    assert (tmp_path / "out" / "pkg" / "hard").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "out"]  # no temp dir left


def test_zstd_tar_when_zstandard_is_installed(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    plain = make_tar(tmp_path / "a.tar", file("x"), mode="w")
    (tmp_path / "a.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    extract(tmp_path / "a.tar.zst", tmp_path / "out")
    assert (tmp_path / "out" / "x").read_bytes() == b"data"


def test_zip(tmp_path: Path) -> None:
    extract(make_zip(tmp_path / "a.zip", {"d/x.txt": b"zip", "d/": b""}), tmp_path / "out")
    assert (tmp_path / "out" / "d" / "x.txt").read_bytes() == b"zip"


@pytest.mark.parametrize(("entry", "member", "why"), [
    (file("../evil"), "../evil", "contains '..'"),
    (file("ok/../../evil"), "ok/../../evil", "contains '..'"),
    (file("/etc/evil"), "/etc/evil", "absolute path"),
    (special("up", tarfile.SYMTYPE, "../outside"), "up", "outside the target directory"),
    (special("abs", tarfile.SYMTYPE, "/etc/passwd"), "abs", "outside the target directory"),
    (special("dev", tarfile.CHRTYPE), "dev", "device or FIFO"),
    (special("fifo", tarfile.FIFOTYPE), "fifo", "device or FIFO"),
    (special("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard", "hard link"),
])
def test_hostile_tar_members_are_named_and_nothing_lands(tmp_path: Path, entry: TarEntry, member: str,
                                                          why: str) -> None:
    archive = make_tar(tmp_path / "a.tgz", file("innocent"), entry)
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match=f"{re.escape(repr(member))}.*{re.escape(why)}"):
        extract(archive, dest)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tgz"]  # no temp dir left either


def test_symlink_then_write_through_it_is_refused(tmp_path: Path) -> None:
    """The classic escape: a link to a directory inside, then a member written through it."""
    archive = make_tar(tmp_path / "a.tgz", special("dir", tarfile.SYMTYPE, "."), file("dir/x"))
    with pytest.raises(ArchiveError, match=r"'dir/x'.*symlink"):
        extract(archive, tmp_path / "out")


def test_symlink_chain_leaving_the_tree_is_refused(tmp_path: Path) -> None:
    """Each link looks harmless alone; together `s/../escape` resolves above the root."""
    archive = make_tar(tmp_path / "a.tgz", special("s", tarfile.SYMTYPE, "."),
                       special("escape", tarfile.SYMTYPE, "s/../../etc"))
    with pytest.raises(ArchiveError, match="outside"):
        extract(archive, tmp_path / "out")


def test_zip_with_dotdot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=r"'\.\./evil'.*'\.\.'"):
        extract(make_zip(tmp_path / "a.zip", {"../evil": b"x"}), tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out").exists()


def test_zip_bomb_is_stopped_by_the_compression_ratio(tmp_path: Path) -> None:
    bomb = make_zip(tmp_path / "bomb.zip", {"zeros": b"\0" * (100 << 20)})
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ArchiveError, match=r"'zeros'.*decompression bomb"):
        extract(bomb, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]


def test_size_and_member_limits(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tgz", *[file(f"f{i}", b"x" * 100) for i in range(20)])
    with pytest.raises(ArchiveError, match=r"'f10'.*more than 10 members"):
        extract(archive, tmp_path / "out", Limits(max_members=10))
    with pytest.raises(ArchiveError, match="expands past 1000 bytes"):
        extract(archive, tmp_path / "out", Limits(max_bytes=1000))


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_broken_archive_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    good = make_tar(tmp_path / "a.tgz", file("x", os.urandom(200_000))).read_bytes()
    bad = good[: len(good) // 2] if damage == "truncate" else b"\x1f\x8b" + os.urandom(5000)
    (tmp_path / "a.tgz").write_bytes(bad)
    with pytest.raises(ArchiveError, match=r"broken archive a.tgz"):
        extract(tmp_path / "a.tgz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"just text\n" * 100)
    with pytest.raises(ArchiveError, match="not a tar or zip archive"):
        extract(tmp_path / "plain", tmp_path / "out")


def test_compressed_single_files_are_not_archives(tmp_path: Path) -> None:
    for name, data in (("a.bz2", bz2.compress(b"x" * 600)), ("a.xz", lzma.compress(b"x" * 600))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ArchiveError):
            extract(tmp_path / name, tmp_path / "out")


def test_merge_into_an_existing_folder(tmp_path: Path) -> None:
    dest = tmp_path / "opt"
    (dest / "bin").mkdir(parents=True)
    (dest / "bin" / "other").write_text("keep me")
    (dest / "bin" / "tool").write_text("old")
    extract(make_tar(tmp_path / "a.tgz", file("bin/tool", b"new"), file("share/doc")), dest)
    assert (dest / "bin" / "other").read_text() == "keep me"
    assert (dest / "bin" / "tool").read_text() == "new"
    assert (dest / "share" / "doc").exists()


def test_merge_conflict_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "opt"
    dest.mkdir()
    (dest / "a").write_text("old a")
    (dest / "b").write_text("a file where the archive has a folder")
    with pytest.raises(ArchiveError, match="not a directory"):
        extract(make_tar(tmp_path / "a.tgz", file("a", b"new a"), file("b/c")), dest)
    assert (dest / "a").read_text() == "old a"
