"""Human units on the command line: `30d`, `12h`, `10G`, and sizes printed back."""

from __future__ import annotations

import re

from cachefix.downloads.errors import InvalidInput

_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MAX_SIZE = 1 << 60  # an exbibyte: larger is a typo, and would overflow C integers downstream
MAX_DURATION = 100 * 365 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `15m`, `12h`, `30d`, `2w`. The unit is required: a bare `30` has
    meant days to `find -mtime` and seconds to curl, so it is refused rather than guessed."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if match and float(match[1]) * _DURATION[match[2]] > MAX_DURATION:
        raise InvalidInput(f"bad duration {_shown(text)}: more than 100 years")
    if not match:
        unit = " (the unit is required)" if re.fullmatch(r"\s*\d+(\.\d+)?\s*", text) else ""
        raise InvalidInput(f"bad duration {_shown(text)}{unit}: use a number and s, m, h, d or w,"
                           " e.g. 90s, 15m, 12h, 30d, 2w")
    return float(match[1]) * _DURATION[match[2]]


def parse_size(text: str) -> int:
    """Bytes in `500M`, `10G`, `1.5GiB`, `10GB` (binary multiples, as `du -h` prints them)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if match and float(match[1]) * _SIZE[match[2]] > MAX_SIZE:
        raise InvalidInput(f"bad size {_shown(text)}: more than an exbibyte")
    if not match:
        raise InvalidInput(f"bad size {_shown(text)}: use a number and K, M, G or T, e.g. 10G")
    return int(float(match[1]) * _SIZE[match[2]])


def _shown(text: str) -> str:
    """`text` quoted for an error message, cut short: it may be a pasted novel."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def format_size(size: float) -> str:
    """`1.2 GiB`: binary units, three significant digits."""
    if abs(size) < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if abs(size) < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"
