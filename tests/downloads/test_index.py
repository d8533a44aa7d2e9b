"""The SQLite index under concurrent first use: the bug a fresh cache and `-j 8` would hit."""

from __future__ import annotations

import threading
from pathlib import Path

from cachefix.downloads.index import Index


def test_many_threads_creating_a_fresh_index_at_once_all_succeed(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    for trial in range(20):
        index = Index(tmp_path / f"{trial}.sqlite")
        start = threading.Barrier(4)

        def use(n: int, index: Index = index, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                index.record_hit(f"http://h/{n}", "a" * 64, 10)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=use, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert index.totals().urls == 4
    assert errors == []
