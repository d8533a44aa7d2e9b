"""The download-cache runtime: `cachefix fetch`, `cachefix cache`, `cachefix shell-init`.

Modules, one job each: `store` (content-addressed blobs), `index` (SQLite metadata),
`http` (one resumable, retrying transfer), `fetch` (hit, revalidate or download),
`materialize` (put a blob at DEST), `extract` (safe unpacking), `housekeeping` (clean,
verify, clear), `layout` (what in the cache folder cachefix made: all it may delete),
`inventory` (every other cache on the machine), `shell` (the drop-in for
the old shell library), `api` (`cached_download`), `commands` (the CLI).

Kept empty of imports: `cachefix` imports `commands` on every start, including lint runs.
"""
