"""Cache archives: what a cache holds comes back exactly, and a damaged or hostile archive is refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from cachefix.mounts import manifest
from cachefix.mounts.archive import ArchiveDamaged, ArchiveWriter, extract_new, remove_tree, verify
from cachefix.mounts.identity import CacheIdentity

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _cache_tree(root: Path) -> Path:
    """A cache like the real ones: pip's wheels, Go's read-only module tree, links, a non-root owner."""
    (root / "http" / "v2").mkdir(parents=True)
    (root / "http" / "v2" / "wheel.whl").write_bytes(os.urandom(300_000))
    (root / "http" / "index.html").write_text("<a>pkg</a>\n" * 100)
    go = root / "mod" / "example.com" / "lib@v1.0.0"
    go.mkdir(parents=True)
    (go / "lib.go").write_text("package lib\n")
    (go / "go.mod").write_text("module example.com/lib\n")
    (root / "mod" / "link-to-lib").symlink_to("example.com/lib@v1.0.0")
    os.link(root / "http" / "index.html", root / "http" / "index-copy.html")
    (root / "empty").mkdir()
    (root / "private").mkdir(mode=0o700)
    (root / "private" / "owned").write_text("uid 1000\n")
    if ROOT:
        os.chown(root / "private", 1000, 1001)
        os.chown(root / "private" / "owned", 1000, 1001)
        os.chown(root, 1000, 1001)
    for folder in (go, go.parent, root / "mod"):  # what `go mod download` leaves: 0444 files in 0555 dirs
        for entry in folder.iterdir():
            if entry.is_file() and not entry.is_symlink():
                entry.chmod(0o444)
        folder.chmod(0o555)
    return root


def _snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry's kind, mode, owner, content or link target, and hard-link group."""
    seen: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""]:
            path = Path(folder, name)
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                extra: object = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(path.read_bytes()).hexdigest()
                extra = (extra, inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 else None)
            else:
                extra = None
            seen[rel] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, extra)
    return seen


def _export(tree: Path, dest: Path) -> tuple[Path, str]:
    archive = dest / "cache.tar.gz"
    with ArchiveWriter(archive, "pip") as writer:
        writer.add_tree(tree)
        info = writer.close()
        writer.publish()
    return archive, info.sha256


def test_round_trip_keeps_modes_owners_symlinks_and_hard_links(tmp_path: Path) -> None:
    tree = _cache_tree(tmp_path / "cache")
    archive, digest = _export(tree, tmp_path)
    info = verify(archive, digest, "pip")
    assert info.files == 7 and info.content_bytes > 300_000
    restored = tmp_path / "restored"
    extract_new(archive, restored, "pip")
    assert _snapshot(restored) == _snapshot(tree)
    assert stat.S_IMODE(os.stat(restored / "mod").st_mode) == 0o555
    assert [p.name for p in tmp_path.iterdir() if "cachefix-tmp" in p.name] == []
    remove_tree(restored)  # read-only folders and all
    assert not restored.exists()


def test_a_builders_tar_stream_is_archived_with_the_same_rules(tmp_path: Path) -> None:
    """The dockerd path: GNU tar in the throwaway build writes the stream, cachefix re-packs it."""
    tree = _cache_tree(tmp_path / "cache")
    stream = subprocess.run(["tar", "-cf", "-", "--numeric-owner", "-C", str(tree), "."], check=True,
                            capture_output=True).stdout
    archive = tmp_path / "cache.tar.gz"
    with ArchiveWriter(archive, "pip") as writer:
        writer.add_stream(io.BytesIO(stream))
        info = writer.close()
        writer.publish()
    restored = tmp_path / "restored"
    extract_new(archive, restored, "pip")
    assert _snapshot(restored) == _snapshot(tree)
    assert verify(archive, info.sha256, "pip") == info


def test_an_empty_cache_is_seen_as_empty(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    with ArchiveWriter(tmp_path / "a.tar.gz", "pip") as writer:
        writer.add_tree(tmp_path / "cache")
        assert writer.close().empty
        writer.discard()
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_archive_is_refused_naming_the_cache(tmp_path: Path, damage: str) -> None:
    archive, digest = _export(_cache_tree(tmp_path / "cache"), tmp_path)
    data = bytearray(archive.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveDamaged, match=r"^pip: .*SHA-256"):
        verify(archive, digest, "pip")


def _hostile(tmp_path: Path, *members: tarfile.TarInfo) -> tuple[Path, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isreg() else None)
    path = tmp_path / "hostile.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


@pytest.mark.parametrize(("members", "why"), [
    ([_member("/etc/cron.d/x")], "absolute path"),
    ([_member("./a/../../x")], r"contains '\.\.'"),
    ([_member("l", tarfile.SYMTYPE, "/etc/cron.d"), _member("l", size=1)], "replaces a symlink listed before it"),
    ([_member("l", tarfile.SYMTYPE, "/etc"), _member("l/cron.d/x", size=1)], "below the symlink 'l'"),
    ([_member("d", tarfile.SYMTYPE, "../.."), _member("./d/f", size=1)], "below the symlink 'd'"),
    ([_member("l", tarfile.SYMTYPE, "/etc"), _member("l", tarfile.SYMTYPE, "/")], "replaces a symlink"),
    ([_member("h", tarfile.LNKTYPE, "/etc/shadow")], "absolute path"),
    ([_member("h", tarfile.LNKTYPE, "later"), _member("later", size=1)], "not to a file listed before it"),
    ([_member("null", tarfile.CHRTYPE)], "device, FIFO or socket"),
    ([_member("fifo", tarfile.FIFOTYPE)], "device, FIFO or socket"),
])
def test_an_unsafe_member_is_refused_although_the_digest_matches(tmp_path: Path, members: list[tarfile.TarInfo],
                                                                  why: str) -> None:
    path, digest = _hostile(tmp_path, *members)
    with pytest.raises(ArchiveDamaged, match=why):
        verify(path, digest, "pip")
    with pytest.raises(ArchiveDamaged, match=why):
        extract_new(path, tmp_path / "out", "pip")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if "cachefix-tmp" in p.name] == []


def test_links_out_of_the_cache_are_kept_as_links_and_never_written_through(tmp_path: Path) -> None:
    """uv links its wheels to absolute paths inside its cache; they only resolve in the container."""
    tree = tmp_path / "cache"
    (tree / "wheels-v1" / "pypi").mkdir(parents=True)
    (tree / "wheels-v1" / "pypi" / "six-1.16").symlink_to("/root/.cache/uv/archive-v0/abc123")
    (tree / "up").symlink_to("../../outside")
    archive, digest = _export(tree, tmp_path)
    assert verify(archive, digest, "uv").files == 2
    extract_new(archive, tmp_path / "out", "uv")
    assert os.readlink(tmp_path / "out" / "wheels-v1" / "pypi" / "six-1.16") == "/root/.cache/uv/archive-v0/abc123"
    assert os.readlink(tmp_path / "out" / "up") == "../../outside"
    assert not (tmp_path.parent / "outside").exists()


def test_safe_relative_links_pass(tmp_path: Path) -> None:
    path, digest = _hostile(tmp_path, _member("a", tarfile.DIRTYPE), _member("a/f", size=3),
                            _member("a/up", tarfile.SYMTYPE, "../a/f"), _member("a/h", tarfile.LNKTYPE, "./a/f"))
    assert verify(path, digest, "pip").files == 3
    extract_new(path, tmp_path / "out", "pip")
    assert (tmp_path / "out" / "a" / "up").read_bytes() == b"xxx"


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    tree = tmp_path / "cache"
    tree.mkdir()
    (tree / "tool").write_text("#!/bin/sh\n")
    (tree / "tool").chmod(0o4755)
    archive, _digest = _export(tree, tmp_path)
    extract_new(archive, tmp_path / "out", "pip")
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "tool").st_mode) == 0o755


def test_manifest_round_trip_and_refusals(tmp_path: Path) -> None:
    identity = CacheIdentity("/root/.cache/pip", "1000", "1000", "0755")
    archive, digest = _export(_cache_tree(tmp_path / "cache"), tmp_path)
    info = verify(archive, digest, "pip")
    entry = manifest.entry(identity, ("/root/.cache/pip",), info)
    assert entry.archive.startswith("cache-root-.cache-pip-") and entry.label == "/root/.cache/pip (uid 1000, gid 1000)"
    assert manifest.read(tmp_path) is None
    manifest.write(tmp_path, "buildah", [entry])
    assert manifest.read(tmp_path) == [entry]
    text = (tmp_path / manifest.MANIFEST).read_text()
    (tmp_path / manifest.MANIFEST).write_text(text.replace(entry.archive, "../../etc/passwd"))
    with pytest.raises(manifest.ManifestError, match="not one cachefix writes"):
        manifest.read(tmp_path)
    (tmp_path / manifest.MANIFEST).write_text("{not json")
    with pytest.raises(manifest.ManifestError, match="damaged or not cachefix's"):
        manifest.read(tmp_path)


def test_archive_names_differ_by_every_part_of_the_identity() -> None:
    names = {manifest.archive_name(CacheIdentity("pip", *opts)) for opts in
             (("0", "0", "0755"), ("1000", "0", "0755"), ("0", "1000", "0755"), ("0", "0", "0700"),
              ("0", "0", "0755", True))}
    assert len(names) == 5
    assert all("/" not in name for name in names)
