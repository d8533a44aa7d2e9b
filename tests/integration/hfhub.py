"""A HuggingFace Hub look-alike on 127.0.0.1 that logs every response and the body bytes it sent.

It answers the requests huggingface_hub 2.4 makes for `hf download` and for
``hf_hub_download``/``snapshot_download`` (the research behind it, against the real client:
revision info, recursive tree, HEAD and GET on ``resolve``), for two tiny repos. Plain HTTP:
the client takes any ``HF_ENDPOINT`` scheme. It never sends Xet headers, so the client
downloads with plain GETs, as it does from any Hub without Xet.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import random
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .pkgserver import LocalServer, RequestLog, reply

MiB = 1024 * 1024
MODEL_REPO = "cachefix-test/tiny-model"
DATASET_REPO = "cachefix-test/tiny-dataset"
MODEL_MARKER = "tiny-model@main"  # config.json's "cachefix_marker": what an image's offline load prints
WEIGHTS_SIZE = 2 * MiB
DATASET_SIZE = 1 * MiB
LFS_SUFFIXES = (".safetensors", ".bin", ".parquet")
# tokenizer.json is a real WordLevel tokenizer (transformers loads it) with a vocabulary large
# enough, about 1 MB, that a tokenizer downloaded again shows up in the byte counts.
TOKENIZER_WORDS = 50_000


def _json(obj: object) -> bytes:
    return json.dumps(obj, indent=1).encode()


def _commit(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Repo:
    """One revision ("main") of a repo: its commit and files (path -> bytes)."""

    kind: str  # "model" or "dataset"
    repo_id: str
    files: dict[str, bytes]

    @property
    def sha(self) -> str:
        return _commit(f"{self.kind}/{self.repo_id}")


def _tokenizer(rng: random.Random) -> bytes:
    """A WordLevel tokenizer in the `tokenizers` library's JSON format, with seeded words."""
    words = dict.fromkeys("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=8)) for _ in range(TOKENIZER_WORDS))
    vocab = {"[UNK]": 0, **{word: i for i, word in enumerate(words, 1)}}
    return _json({"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
                  "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None, "decoder": None,
                  "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}})


def _repos() -> dict[tuple[str, str], Repo]:
    """The served repos; payloads are seeded, so every session serves the same bytes."""
    config = {"model_type": "bert", "hidden_size": 8, "cachefix_marker": MODEL_MARKER}
    model = {
        "config.json": _json(config),
        "tokenizer.json": _tokenizer(random.Random(f"{MODEL_REPO}/tokenizer")),
        "tokenizer_config.json": _json({"tokenizer_class": "PreTrainedTokenizerFast"}),
        "README.md": b"# tiny-model\n",
        "model.safetensors": random.Random(MODEL_REPO).randbytes(WEIGHTS_SIZE),
    }
    dataset = {
        "README.md": b"# tiny-dataset\n",
        "data/train.parquet": random.Random(DATASET_REPO).randbytes(DATASET_SIZE),
    }
    repos = (Repo("model", MODEL_REPO, model), Repo("dataset", DATASET_REPO, dataset))
    return {(r.kind, r.repo_id): r for r in repos}


REPOS = _repos()
TOKENIZER_SIZE = len(REPOS[("model", MODEL_REPO)].files["tokenizer.json"])


def _is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


def _etag(path: str, data: bytes) -> str:
    """What the Hub sends: the sha256 for LFS files, the git blob sha for the others."""
    return hashlib.sha256(data).hexdigest() if _is_lfs(path) else _git_blob_sha(data)


def _tree(repo: Repo) -> list[dict[str, object]]:
    """The recursive tree listing, files then folders, as /api/{kind}s/{id}/tree/{sha} returns it."""
    entries: list[dict[str, object]] = []
    folders: set[str] = set()
    for path, data in sorted(repo.files.items()):
        entry: dict[str, object] = {"type": "file", "oid": _git_blob_sha(data), "size": len(data), "path": path}
        if _is_lfs(path):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        entries.append(entry)
        parts = path.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return entries + [{"type": "directory", "oid": _commit(f), "size": 0, "path": f} for f in sorted(folders)]


def _make_handler(log: RequestLog) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the client keeps connections open, as with the real Hub
        server_version = "cachefix-test-hub/1"

        def log_message(self, format: str, *args: object) -> None:  # quiet: the log is `log`
            pass

        def do_HEAD(self) -> None:
            self._route(send_body=False)

        def do_GET(self) -> None:
            self._route(send_body=True)

        def _route(self, send_body: bool) -> None:
            parts = unquote(urlsplit(self.path).path).strip("/").split("/")
            if parts[0] == "api" and len(parts) == 6 and parts[1] in ("models", "datasets"):
                self._api(parts[1][:-1], "/".join(parts[2:4]), parts[4], parts[5], send_body)
                return
            kind = "model"
            if parts[0] == "datasets":
                kind, parts = "dataset", parts[1:]
            if len(parts) >= 5 and parts[2] == "resolve":
                self._resolve(kind, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), send_body)
                return
            self._error(404, "NotFound", send_body)  # e.g. the CLI's /api/agent-harnesses: 404 is fine

        def _repo(self, kind: str, repo_id: str, rev: str, send_body: bool) -> Repo | None:
            repo = REPOS.get((kind, repo_id))
            if repo is None:
                self._error(404, "RepoNotFound", send_body)
            elif rev not in ("main", repo.sha):
                self._error(404, "RevisionNotFound", send_body)
            else:
                return repo
            return None

        def _api(self, kind: str, repo_id: str, what: str, rev: str, send_body: bool) -> None:
            if (repo := self._repo(kind, repo_id, rev, send_body)) is None:
                return
            if what == "revision":
                info = {"id": repo_id, "sha": repo.sha, "private": False, "gated": False, "disabled": False,
                        "siblings": [{"rfilename": p} for p in sorted(repo.files)]}
                self._reply(200, _json(info), {"Content-Type": "application/json"}, send_body)
            elif what == "tree":
                self._reply(200, _json(_tree(repo)), {"Content-Type": "application/json"}, send_body)
            else:
                self._error(404, "NotFound", send_body)

        def _resolve(self, kind: str, repo_id: str, rev: str, filename: str, send_body: bool) -> None:
            if (repo := self._repo(kind, repo_id, rev, send_body)) is None:
                return
            data = repo.files.get(filename)
            if data is None:
                self._error(404, "EntryNotFound", send_body, {"X-Repo-Commit": repo.sha})
                return
            headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{_etag(filename, data)}"',
                       "Content-Type": "application/octet-stream"}
            self._reply(200, data, headers, send_body)

        def _error(self, status: int, code: str, send_body: bool, extra: dict[str, str] | None = None) -> None:
            headers = {"X-Error-Code": code, "Content-Type": "application/json", **(extra or {})}
            self._reply(status, _json({"error": code}), headers, send_body)

        def _reply(self, status: int, body: bytes, headers: dict[str, str], send_body: bool) -> None:
            reply(self, log, status, body, headers, send_body)

    return Handler


class HubServer(LocalServer):
    """Serves ``REPOS`` on 127.0.0.1 over HTTP in a daemon thread; ``url`` is the HF_ENDPOINT."""

    def __init__(self) -> None:
        super().__init__(_make_handler)

    @property
    def url(self) -> str:
        return self.origin
