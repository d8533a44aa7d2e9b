"""`cachefix cache push` and the remote's line in `cache stats`.

Push re-checks every local blob before sending it (a corrupt one is dropped, never shared),
skips what the remote already holds (one HEAD each), and shares each URL's record unless
the remote's record was confirmed by the origin more recently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cachefix.downloads.errors import TransferFailed
from cachefix.downloads.remote import Mapping
from cachefix.downloads.remote.shared import Remote
from cachefix.downloads.store import Store


@dataclass
class Pushed:
    uploaded: int = 0
    uploaded_bytes: int = 0
    present: int = 0
    records: int = 0


def push(store: Store, remote: Remote) -> Pushed:
    """Upload what `store` holds to `remote`; raises TransferFailed when the remote fails."""
    from cachefix.downloads.fetch import Fetcher

    checker = Fetcher(store)
    index = store.index
    pushed = Pushed()
    for digest, _ in list(store.blobs()):
        size = checker.verified_size(digest)
        if size is None:
            continue
        sent = remote.push(store.blob_path(digest), digest)
        _raise_if_down(remote)
        if sent:
            pushed.uploaded += 1
            pushed.uploaded_bytes += size
        else:
            pushed.present += 1
        for url in index.urls_for(digest):
            entry = index.url(url)
            there = remote.lookup(url)
            if entry is None or (there is not None and there.checked >= entry.checked):
                continue
            remote.record(Mapping(url, entry.digest, entry.size, entry.etag, entry.last_modified, entry.checked))
            _raise_if_down(remote)
            pushed.records += 1
    return pushed


def _raise_if_down(remote: Remote) -> None:
    if remote.down is not None:
        raise TransferFailed(f"could not push to {remote.tier.location}: {remote.down}")


def summary(remote: Remote) -> dict[str, Any]:
    """The remote as `cache stats --json` reports it."""
    report: dict[str, Any] = {"name": "remote", "where": remote.tier.location}
    found = remote.call("reading its contents", remote.tier.summary, None, warn=False)
    if found is None:
        report["unreachable"] = remote.down
    else:
        report.update(found)
    return report


def summary_line(report: dict[str, Any]) -> str:
    from cachefix.downloads.units import format_size

    if "unreachable" in report:
        return f"remote {report['where']}: unreachable ({report['unreachable']})"
    if "blobs" not in report:
        return f"remote {report['where']}: reachable (its protocol cannot list what it holds)"
    more = "" if report.get("complete", True) else " (at least: the listing was cut short)"
    return f"remote {report['where']}: {report['blobs']} files, {format_size(report['bytes'])}{more}"
