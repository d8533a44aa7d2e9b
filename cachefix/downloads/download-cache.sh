# cachefix drop-in for scripts/lib/download-cache.sh (@SHELL@): the same functions, arguments
# and exit codes, backed by cachefix's content-addressed, SHA-256-verified, concurrency-safe
# cache. Load it with:  eval "$(cachefix shell-init @SHELL@)"
# Settings, as before: DOWNLOAD_CACHE (the cache folder), CURL_TIMEOUT (seconds a transfer may
# stall, default 120) and CURL_CONNECT_TIMEOUT (default 30).

DOWNLOAD_CACHE="${DOWNLOAD_CACHE:-@DEFAULT_CACHE@}"

_cachefix() {
    CACHEFIX_CACHE_DIR="$DOWNLOAD_CACHE" @CACHEFIX@ "$@"
}

# Usage: cached_download URL DEST_FILE [EXPECTED_SHA256]  -> 0 when DEST_FILE holds the file
cached_download() {
    if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then
        echo "✗ Usage: cached_download URL DEST_FILE [EXPECTED_SHA256]" >&2
        return 1
    fi
    _cachefix fetch "$1" -o "$2" --sha256="${3:-}" --verbose \
        --timeout "${CURL_TIMEOUT:-120}" --connect-timeout "${CURL_CONNECT_TIMEOUT:-30}" || return 1
}

# Usage: cached_download_extract URL DEST_DIR [EXPECTED_SHA256] [TAR_FLAGS]
# TAR_FLAGS is accepted and ignored: the compression is read from the archive itself.
cached_download_extract() {
    if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then
        echo "✗ Usage: cached_download_extract URL DEST_DIR [EXPECTED_SHA256] [TAR_FLAGS]" >&2
        return 1
    fi
    _cachefix fetch "$1" --extract "$2" --sha256="${3:-}" --verbose \
        --timeout "${CURL_TIMEOUT:-120}" --connect-timeout "${CURL_CONNECT_TIMEOUT:-30}" >/dev/null || return 1
}

# Usage: cleanup_download_cache [DAYS]  -> evicts entries unused for DAYS (default 30)
cleanup_download_cache() {
    _cachefix cache clean --older-than "${1:-30}d"
    return 0
}

# Usage: show_cache_stats
show_cache_stats() {
    _cachefix cache stats --downloads
    return 0
}

# Usage: verify_cache_file CACHE_KEY EXPECTED_SHA256  (CACHE_KEY: the SHA-256 of the URL)
verify_cache_file() {
    _cachefix cache verify "${1:-}" --sha256 "${2:-}" || return 1
}
