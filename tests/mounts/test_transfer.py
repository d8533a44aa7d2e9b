"""`cachefix mounts export/import` through the real command line, on buildah's cache folders in a
temp dir (no builder runs: buildah's builds only read those folders), plus the dockerd details
that need no daemon. The real builders are in tests/integration/test_mounts_roundtrip.py."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import stat
from pathlib import Path

import pytest

from cachefix.cli import main
from cachefix.mounts import builders, manifest, transfer
from cachefix.mounts.archive import ArchiveWriter
from cachefix.mounts.builders import Buildah, BuilderError, CacheJob, mount_flag
from cachefix.mounts.identity import CacheIdentity

ROOT = os.geteuid() == 0
DOCKERFILE = """\
FROM python:3.11-slim AS app
RUN useradd -u 1000 -m app
RUN --mount=type=cache,target=/var/cache/pip-1000,uid=1000,gid=1000 pip install x
RUN --mount=type=cache,id=gomod,target=/go/pkg/mod go mod download
RUN --mount=type=cache,target=/root/.cache/huggingface python -c 'download()'
"""
PIP = CacheIdentity("/var/cache/pip-1000", "1000", "1000", explicit=True)
GO = CacheIdentity("gomod")
HF = CacheIdentity("/root/.cache/huggingface")


@pytest.fixture
def buildah(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Buildah:
    """buildah 1.28's layout under a temp TMPDIR, whatever is installed here."""
    engine = Buildah(version=(1, 28), temp_dir=str(tmp_path / "tmp"), uid=0)
    monkeypatch.setattr(transfer, "choose", lambda name, helper: (engine, "buildah"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return engine


def _fill(engine: Buildah, identity: CacheIdentity, size: int = 1000, seed: str = "") -> Path:
    folder = engine.folder(identity)
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "blob").write_bytes(random.Random(seed).randbytes(size))  # incompressible
    (folder / "sub" / "link").symlink_to("blob")
    if identity == GO:  # what `go mod download` leaves
        (folder / "sub" / "blob").chmod(0o444)
        (folder / "sub").chmod(0o555)
    if ROOT:
        os.chown(folder, int(identity.uid), int(identity.gid))
    return folder


def _tree(folder: Path) -> list[tuple[str, str, int, int, str]]:
    rows = []
    for path in sorted([folder, *folder.rglob("*")]):
        st = os.lstat(path)
        body = os.readlink(path) if path.is_symlink() else path.read_bytes().hex()[:16] if path.is_file() else ""
        rows.append((str(path.relative_to(folder)), stat.filemode(st.st_mode), st.st_uid, st.st_gid, body))
    return rows


def _wipe(engine: Buildah) -> None:
    for folder, dirs, _files in os.walk(engine.temp_dir):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
    shutil.rmtree(engine.temp_dir)


def test_export_wipe_import_gives_back_every_cache_as_it_was(buildah: Buildah, capsys) -> None:
    folders = {identity: _fill(buildah, identity, seed=identity.id) for identity in (PIP, GO, HF)}
    before = {identity: _tree(folder) for identity, folder in folders.items()}
    assert main(["mounts", "export", "out"]) == 0
    document = json.loads(Path("out/manifest.json").read_text())
    assert {(c["id"], c["uid"], c["gid"]) for c in document["caches"]} == {("/var/cache/pip-1000", "1000", "1000"),
                                                                           ("gomod", "0", "0"),
                                                                           ("/root/.cache/huggingface", "0", "0")}
    _wipe(buildah)
    assert main(["mounts", "import", "out"]) == 0
    assert {identity: _tree(buildah.folder(identity)) for identity in folders} == before
    assert "imported /var/cache/pip-1000 (uid 1000, gid 1000): 2 files" in capsys.readouterr().out


def test_a_damaged_archive_stops_the_import_before_the_builder_is_touched(buildah: Buildah, capsys) -> None:
    _fill(buildah, PIP)
    _fill(buildah, GO)
    assert main(["mounts", "export", "out"]) == 0
    _wipe(buildah)
    go = Path("out") / manifest.archive_name(GO)
    data = bytearray(go.read_bytes())
    data[-20] ^= 0xFF
    go.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["mounts", "import", "out"]) == 2
    err = capsys.readouterr().err
    assert "cache gomod: " in err and "SHA-256" in err and "builder is as it was" in err
    assert not Path(buildah.temp_dir).exists()  # not even the intact pip cache went in


def test_import_leaves_a_cache_that_already_holds_files_alone(buildah: Buildah, capsys) -> None:
    _fill(buildah, PIP, seed="old")
    assert main(["mounts", "export", "out"]) == 0
    folder = buildah.folder(PIP)
    (folder / "sub" / "blob").write_bytes(b"the builder's own, newer")
    assert main(["mounts", "import", "out"]) == 0
    assert (folder / "sub" / "blob").read_bytes() == b"the builder's own, newer"
    assert "kept /var/cache/pip-1000 (uid 1000, gid 1000): the builder's cache already holds files" in \
        capsys.readouterr().out


def test_max_size_keeps_the_largest_caches_that_fit(buildah: Buildah, capsys) -> None:
    _fill(buildah, PIP, size=600_000, seed="a")
    _fill(buildah, GO, size=300_000, seed="b")
    _fill(buildah, HF, size=200_000, seed="c")
    # random-looking bytes do not compress: the archives are about 600, 300 and 200 KB
    assert main(["mounts", "export", "--max-size", "850K", "out"]) == 0
    kept = {c["id"] for c in json.loads(Path("out/manifest.json").read_text())["caches"]}
    assert kept == {"/var/cache/pip-1000", "/root/.cache/huggingface"}
    assert "left out gomod" in capsys.readouterr().out
    assert sorted(p.name for p in Path("out").iterdir()) == sorted(
        [manifest.MANIFEST, manifest.archive_name(PIP), manifest.archive_name(HF)])


def test_include_and_exclude_match_the_id_or_a_target(buildah: Buildah) -> None:
    for identity in (PIP, GO, HF):
        _fill(buildah, identity)
    assert main(["mounts", "export", "--include", "/go/*", "--include", "*pip*", "--exclude", "*-1000", "out"]) == 0
    assert [c["id"] for c in json.loads(Path("out/manifest.json").read_text())["caches"]] == ["gomod"]


def test_export_replaces_only_what_it_made(buildah: Buildah, capsys) -> None:
    _fill(buildah, PIP)
    _fill(buildah, GO)
    out = Path("out")
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["mounts", "export", "out"]) == 0
    assert main(["mounts", "export", "--exclude", "gomod", "out"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([manifest.MANIFEST, manifest.archive_name(PIP), "notes.txt"])  # gomod's removed: ours
    (out / manifest.MANIFEST).unlink()
    capsys.readouterr()
    assert main(["mounts", "export", "out"]) == 2  # the pip archive is no longer listed as ours
    assert "cachefix did not make it" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_an_empty_cache_never_replaces_the_last_export(buildah: Buildah, capsys) -> None:
    _fill(buildah, PIP, seed="full")
    assert main(["mounts", "export", "out"]) == 0
    digest = json.loads(Path("out/manifest.json").read_text())["caches"][0]["sha256"]
    _wipe(buildah)
    assert main(["mounts", "export", "out"]) == 0
    assert json.loads(Path("out/manifest.json").read_text())["caches"][0]["sha256"] == digest
    out = capsys.readouterr().out
    assert "kept /var/cache/pip-1000 (uid 1000, gid 1000): empty in the builder" in out
    assert "skipped gomod: empty in the builder" in out


def test_one_failing_cache_is_named_and_the_others_are_exported(buildah: Buildah, monkeypatch, capsys) -> None:
    _fill(buildah, PIP)
    _fill(buildah, GO)
    real = Buildah.export

    def failing(self: Buildah, job: CacheJob, writer: ArchiveWriter) -> None:
        if job.identity == GO:
            raise BuilderError("the throwaway build failed (exit 1): tar: Cannot open")
        real(self, job, writer)
    monkeypatch.setattr(Buildah, "export", failing)
    assert main(["mounts", "export", "out"]) == 1
    assert "cache gomod: not exported: the throwaway build failed" in capsys.readouterr().err
    assert [c["id"] for c in json.loads(Path("out/manifest.json").read_text())["caches"]] == ["/var/cache/pip-1000"]
    assert [p.name for p in Path("out").iterdir() if "tmp" in p.name] == []


def test_import_without_an_export_is_not_an_error(buildah: Buildah, capsys) -> None:
    assert main(["mounts", "import", "out"]) == 0
    assert "nothing to import" in capsys.readouterr().out


def test_bad_arguments_exit_2(buildah: Buildah, capsys) -> None:
    assert main(["mounts", "export", "--max-size", "lots", "out"]) == 2
    assert "--max-size" in capsys.readouterr().err
    Path("Dockerfile").write_text("FROM x\nRUN --mount=type=cache,target=/c,uid=abc true\n")
    assert main(["mounts", "export", "out"]) == 2
    assert "invalid value 'abc' for uid" in capsys.readouterr().err
    assert not Path("out").exists()
    Path("Dockerfile").write_text(DOCKERFILE)
    Path("a-file").write_text("not a folder")
    assert main(["mounts", "export", "a-file"]) == 2
    assert "cannot make a-file" in capsys.readouterr().err


@pytest.mark.parametrize(("version", "expected"), [
    ((1, 28), "buildah-cache/var/cache/pip-1000"),
    ((1, 33), "buildah-cache-0/var/cache/pip-1000"),
    ((1, 40), "buildah-cache-0/" + hashlib.sha256(b"/var/cache/pip-1000:1000:1000").hexdigest()[:16]),
])
def test_buildah_folders_follow_each_versions_layout(tmp_path: Path, version: tuple[int, int], expected: str) -> None:
    engine = Buildah(version=version, temp_dir=str(tmp_path), uid=0)
    assert engine.folder(PIP) == tmp_path / expected
    sneaky = engine.folder(CacheIdentity("../../etc"))
    assert sneaky.is_relative_to(tmp_path)


def test_buildah_1_33_finds_a_hashed_folder_of_a_security_release(tmp_path: Path) -> None:
    engine = Buildah(version=(1, 33), temp_dir=str(tmp_path), uid=0)
    hashed = tmp_path / "buildah-cache-0" / hashlib.sha256(b"gomod").hexdigest()[:16]
    hashed.mkdir(parents=True)
    assert engine.folder(GO) == hashed


def test_dockerd_mount_flag_repeats_the_identity_exactly() -> None:
    assert mount_flag(PIP, "/cachefix-cache") == ("--mount=type=cache,id=/var/cache/pip-1000,target=/cachefix-cache,"
                                                  "uid=1000,gid=1000,mode=0755,sharing=locked")
    # written or not, the defaults key different caches: the copy writes them only when the project does
    assert mount_flag(GO, "/c") == "--mount=type=cache,id=gomod,target=/c,sharing=locked"
    assert "uid=0,gid=0,mode=0755" in mount_flag(CacheIdentity("gomod", explicit=True), "/c")
    assert '"id=a,b"' in mount_flag(CacheIdentity("a,b"), "/c")
    with pytest.raises(BuilderError, match="cannot repeat exactly"):
        mount_flag(CacheIdentity("pip-$HOME"), "/c")


def test_dockerd_needs_an_image_with_tar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builders, "_run", lambda argv, **_: builders.subprocess.CompletedProcess(argv, 1, "", ""))
    job = CacheJob(PIP, "pip", ("python:3.11-slim",))
    with pytest.raises(BuilderError, match=r"none of python:3\.11-slim.*--helper-image"):
        builders.Docker().image_for(job)
    assert builders.Docker(helper_image="debian:bookworm-slim").image_for(job) == "debian:bookworm-slim"
    monkeypatch.setattr(builders, "_run", lambda argv, **_: builders.subprocess.CompletedProcess(argv, 0, "", ""))
    assert builders.Docker().image_for(job) == "python:3.11-slim"
    assert builders.Docker(helper_image="busybox").image_for(job) == "busybox"  # the user knows best


def test_fit_keeps_the_largest_first() -> None:
    assert transfer.fit([5, 1, 4, 3], lambda n: n, 8) == ([5, 3], [4, 1])
    assert transfer.fit([5, 1, 4, 3], lambda n: n, None) == ([5, 1, 4, 3], [])
