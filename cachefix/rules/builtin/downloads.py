"""CF701 download: plain `curl` and `wget` downloads that fetch the same file on every rebuild."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext, image_name, image_tag
from cachefix.rewriter.mounts import CacheMount
from cachefix.rewriter.shell import Command, Word
from cachefix.rules.placement import mount_fix
from cachefix.rules.rule import RunRule

CACHE = "/var/cache/cachefix-downloads"
# curl options that change only how the transfer is made, never what is kept: True when they take a value.
SAFE_LONG = {
    **dict.fromkeys(("--fail", "--silent", "--show-error", "--location", "--insecure", "--compressed", "--ipv4",
                     "--ipv6", "--verbose", "--progress-bar", "--no-progress-meter", "--globoff", "--netrc",
                     "--netrc-optional", "--location-trusted", "--retry-connrefused", "--retry-all-errors",
                     "--fail-with-body", "--fail-early", "--remove-on-error", "--no-buffer", "--no-keepalive",
                     "--tlsv1", "--tlsv1.0", "--tlsv1.1", "--tlsv1.2", "--tlsv1.3", "--http1.0", "--http1.1",
                     "--http2", "--ssl", "--ssl-reqd", "--anyauth", "--basic", "--digest", "--negotiate",
                     "--ntlm", "--path-as-is", "--proxytunnel", "--disable", "--remote-time"), False),
    **dict.fromkeys(("--header", "--user", "--user-agent", "--referer", "--cookie", "--oauth2-bearer", "--cacert",
                     "--capath", "--cert", "--key", "--cert-type", "--key-type", "--pinnedpubkey", "--netrc-file",
                     "--retry", "--retry-delay", "--retry-max-time", "--connect-timeout", "--max-time",
                     "--max-redirs", "--limit-rate", "--speed-limit", "--speed-time", "--keepalive-time",
                     "--resolve", "--connect-to", "--noproxy", "--proxy", "--proxy-user", "--proto",
                     "--proto-redir", "--proto-default", "--tls-max", "--ciphers", "--stderr", "--interface",
                     "--dns-servers"), True),
}
SAFE_FLAGS = frozenset("fsSLk46vN#0123gnpqR")
SAFE_VALUED = frozenset("AbeEHmuUxyY")
VALUED = SAFE_VALUED | frozenset("cCdDFKoPQrTtwXz")  # every short option of curl that takes a value
CONDITIONAL = frozenset({"-z", "--time-cond", "--etag-compare", "--etag-save"})
OUTPUT, REMOTE_NAME = ("-o", "--output"), ("-O", "--remote-name")
# Images whose curl is older than 7.70: no --etag-* (< 7.68), or one that empties the output on a 304.
OLD_CURL_TAGS = re.compile(r"(^|[-_.])(jessie|stretch|buster|trusty|xenial|bionic|focal)($|[-_.])")
OLD_CURL_IMAGES = {"ubuntu": re.compile(r"(14|16|18|20)\.04.*"), "debian": re.compile(r"(8|9|10)(\.\d+)?(-.*)?"),
                   "centos": re.compile(r"[5-8](\..*)?"), "alpine": re.compile(r"3\.([0-9]|1[0-2])(\..*)?")}
POSITIONAL = re.compile(r"\$([@*#0-9]|\{[@*#0-9])")
# One redirection after a command's words (`> FILE`, `2>&1`, `>>"$f"`), with the blanks before it.
REDIRECTION = re.compile(r"(?:[ \t]|\\\n)*(\d?[<>]{1,2}|&>{1,2})&?[ \t]*(?:\"[^\"]*\"|'[^']*'|[^\s;&|<>()]+)")
# GNU wget options that change only how the transfer is made, never what is kept: True when they take a value.
WGET_LONG = {
    **dict.fromkeys(("--quiet", "--verbose", "--no-verbose", "--no-check-certificate", "--show-progress",
                     "--server-response", "--inet4-only", "--inet6-only", "--retry-connrefused", "--no-dns-cache",
                     "--auth-no-challenge", "--no-cookies", "--https-only", "--no-proxy", "--no-hsts", "--debug",
                     "--random-wait"), False),
    **dict.fromkeys(("--header", "--user", "--password", "--http-user", "--http-password", "--tries", "--timeout",
                     "--connect-timeout", "--read-timeout", "--dns-timeout", "--wait", "--waitretry", "--user-agent",
                     "--referer", "--ca-certificate", "--ca-directory", "--certificate", "--certificate-type",
                     "--private-key", "--private-key-type", "--limit-rate", "--progress", "--secure-protocol",
                     "--max-redirect", "--bind-address", "--load-cookies", "--retry-on-http-error"), True),
}
WGET_FLAGS = frozenset("qvS46d")
WGET_VALUED = frozenset("tTUw")
WGET_OUTPUT = ("-O", "--output-document")
BUSYBOX_IMAGE = re.compile(r"alpine|busybox")
APK = re.compile(r"\bapk\s+(add|update|upgrade)\b")
PATTERN = (f"RUN --mount=type=cache,target={CACHE},sharing=locked (u=URL && "
           f"c={CACHE}/$(printf %s \"$u\" | sha256sum | cut -c1-64) && "
           "curl -fsSL -R -z \"$c\" -o \"$c.part\" \"$u\" && "
           '{ [ ! -e "$c.part" ] || mv -f "$c.part" "$c"; } && cp "$c" FILE)')


@dataclass
class Download:
    """What a curl or wget command downloads and where it puts it; `refusal` says why it cannot be rewritten."""

    url: Word | None = None
    kept: list[str] = field(default_factory=list)  # the user's words, less the URL and the output option
    output: str | None = None  # the output file as written; None: stdout (curl), named after the URL (wget)
    conditional: bool = False  # already a conditional request (cachefix's own rewrite, or the user's)
    refusal: str = ""

    def refuse(self, reason: str) -> None:
        """Keep the first reason: the words after it are still read, for where the output goes."""
        self.refusal = self.refusal or reason


@dataclass
class CurlCall(Download):
    remote_name: bool = False  # -O: the file is named after the URL, in the working folder
    remote_time: bool = False


OptionReader = Callable[[Any, list[Word], int], int]


def _read_words(call: Download, words: list[Word], positional: Callable[[Any, Word], None],
                long_option: OptionReader, short_option: OptionReader) -> None:
    """Walk a downloader's words: operands to `positional`, options to the readers, which return
    how many words they took."""
    i = 0
    while i < len(words):
        value = words[i].value
        if value is None or not value.startswith("-") or value == "-":
            positional(call, words[i])
            i += 1
        else:
            i += (long_option if value.startswith("--") else short_option)(call, words, i)
    if call.url is None:
        call.refuse("it names no URL cachefix can read")


def parse_curl(command: Command) -> CurlCall:
    """Read curl's words; anything whose effect on the kept file is not known is a refusal."""
    call = CurlCall()
    _read_words(call, list(command.args), _positional, _long, _short)
    return call


def _positional(call: CurlCall, word: Word) -> None:
    if call.url is not None:
        call.refuse("it downloads more than one URL")
        return
    if word.value is None and not (len(word.raw) > 1 and word.raw[0] == word.raw[-1] == '"'):
        call.refuse(f"its URL `{word.raw}` holds a variable this file does not set, and unquoted it could split into "
                    "several words: quote it")
    elif word.value is not None and re.search(r"[\[\]{}]", word.value):
        call.refuse("its URL holds `[]` or `{}`, which curl expands into several URLs")
    call.url = word


def _long(call: CurlCall, words: list[Word], i: int) -> int:
    """Read one long option; the number of words it takes."""
    option = words[i].value or ""
    if option in CONDITIONAL:
        call.conditional = True
        return 1
    if option in OUTPUT or option in REMOTE_NAME:
        return _output(call, option in REMOTE_NAME, words, i + 1, words[i].raw == option)
    if option not in SAFE_LONG:
        call.refuse(f"cachefix does not know what `{option}` does to the file it keeps")
        return 1
    call.remote_time |= option == "--remote-time"
    take = 2 if SAFE_LONG[option] else 1
    call.kept.extend(w.raw for w in words[i:i + take])
    return take


def _short(call: CurlCall, words: list[Word], i: int) -> int:
    """Read a group of short options (`-fsSLO`, `-o FILE`, `-H "A: b"`); the number of words it takes."""
    word = words[i]
    if word.value in CONDITIONAL:  # `-z`
        call.conditional = True
        return 1
    letters = (word.value or "")[1:]
    for at, letter in enumerate(letters):
        if letter in ("o", "O"):
            return _output_in_group(call, word, words, i, at)
        if letter not in SAFE_FLAGS | SAFE_VALUED:
            call.refuse(f"cachefix does not know what `-{letter}` does to the file it keeps")
        if letter in VALUED:
            take = 1 if at + 1 < len(letters) else 2
            call.kept.extend(w.raw for w in words[i:i + take])
            return take
        call.remote_time |= letter == "R"
    call.kept.append(word.raw)
    return 1


def _output_in_group(call: CurlCall, word: Word, words: list[Word], i: int, at: int) -> int:
    """`-o FILE` or `-O`, alone or closing a group (`-fsSLO`): the group is kept without it."""
    letters = (word.value or "")[1:]
    if letters[at] == "o" and letters[at + 1:]:
        call.output = word.raw
        call.refuse("its output file is glued to `-o`")
        return 1
    if word.raw != word.value:
        call.refuse("its options are quoted")
        return 1
    others = letters[:at] + letters[at + 1:]
    for letter in others[at:]:
        if letter not in SAFE_FLAGS:
            call.refuse(f"cachefix does not know what `-{letter}` does to the file it keeps")
    if others:
        call.kept.append("-" + others)
        call.remote_time |= "R" in others
    return _output(call, letters[at] == "O", words, i + 1, True)


def _output(call: CurlCall, remote: bool, words: list[Word], at: int, plain: bool) -> int:
    """Record `-o FILE` or `-O`; the number of words the option took (as read from `at - 1`)."""
    if call.output is not None or call.remote_name:
        call.refuse("it writes more than one output")
    elif not plain:
        call.refuse("its output option is quoted")
    elif remote:
        call.remote_name = True
        return 1
    elif at >= len(words):
        call.refuse("`-o` has no file")
    else:
        call.output = words[at].raw if words[at].value != "-" else None
        return 2
    return 1


def old_curl(image: str) -> bool:
    """Whether the base image is known to ship a curl older than 7.70 (see the documentation)."""
    name, tag = image_name(image), image_tag(image)
    known = OLD_CURL_IMAGES.get(name)
    return bool(OLD_CURL_TAGS.search(tag)) or (known is not None and known.fullmatch(tag) is not None)


def refreshed(cache: str, prefix: str, call: CurlCall) -> str:
    """POSIX sh that brings the cached copy `$c` of the URL up to date with one conditional request.

    ETag first (`If-None-Match`); for a server that sends none, the copy's Last-Modified time
    (`-R`, then `-z`): a server ignores `If-Modified-Since` next to `If-None-Match`, even `""`.
    The body goes to `$c.part` and replaces `$c` only when there is one (curl creates no file
    on a 304), then the ETag that came with it: killed between the two, the old ETag no longer
    matches, so the next build downloads again rather than keep a stale copy."""
    assert call.url is not None
    return (f'u={call.url.raw} && c={cache}/$(printf %s "$u" | sha256sum | cut -c1-64) && '
            'rm -f "$c.part" "$c.etag.part" && { [ -e "$c" ] || rm -f "$c.etag"; } && '
            'set -- --etag-compare "$c.etag" && { [ ! -e "$c" ] || [ -s "$c.etag" ] || set -- -z "$c"; } && '
            f'{prefix}curl {" ".join([*call.kept, "-R"])} "$@" --etag-save "$c.etag.part" -o "$c.part" "$u" && '
            '{ [ ! -e "$c.part" ] || { mv -f "$c.part" "$c" && '
            '{ mv -f "$c.etag.part" "$c.etag" 2>/dev/null || rm -f "$c.etag"; }; }; }')


def sink(call: CurlCall) -> str:
    """What the original command did with the body, done from the cached copy."""
    if call.output is None and not call.remote_name:
        return 'cat "$c"'
    target = '"$(basename "$u")"' if call.remote_name else call.output
    return f'cp "$c" {target}' + (f' && touch -r "$c" {target}' if call.remote_time else "")


@dataclass
class WgetCall(Download):
    """`output` "-" is stdout; `conditional` is `-N -P DIR`, a refresh of a kept copy."""

    spider: bool = False


def parse_wget(command: Command) -> WgetCall:
    """Read GNU wget's words; an option whose effect on the kept file is not known is a refusal."""
    call = WgetCall()
    _read_words(call, list(command.args), _wget_url, _wget_long, _wget_short)
    values = command.arg_values()
    call.conditional = bool({"-N", "--timestamping"} & set(values)) and bool(
        {"-P", "--directory-prefix"} & {v.partition("=")[0] for v in values})
    return call


def _wget_url(call: WgetCall, word: Word) -> None:
    if call.url is not None:
        call.refuse("it downloads more than one URL")
    call.url = word


def _wget_long(call: WgetCall, words: list[Word], i: int) -> int:
    """Read one long option (`--tries 3`, `--tries=3`); the number of words it takes."""
    name, glued, _ = (words[i].value or "").partition("=")
    call.spider |= name == "--spider"
    if name in WGET_OUTPUT:
        return _wget_output(call, words, i, words[i].value[len(name) + 1:] if glued else None)
    if name not in WGET_LONG:
        call.refuse(f"cachefix does not know what `{name}` does to the file it keeps")
        return 1
    take = 2 if WGET_LONG[name] and not glued else 1
    call.kept.extend(w.raw for w in words[i:i + take])
    return take


def _wget_short(call: WgetCall, words: list[Word], i: int) -> int:
    """Read a group of short options (`-q`, `-nv`, `-qO-`, `-O FILE`, `-t 3`); the number of words it takes."""
    word = words[i]
    if word.value == "-nv":
        call.kept.append(word.raw)
        return 1
    letters = (word.value or "")[1:]
    for at, letter in enumerate(letters):
        if letter == "O":
            if word.raw != word.value:
                call.refuse("its options are quoted")
            if letters[:at]:
                call.kept.append("-" + letters[:at])
            return _wget_output(call, words, i, letters[at + 1:] or None)
        if letter not in WGET_FLAGS | WGET_VALUED:
            call.refuse(f"cachefix does not know what `-{letter}` does to the file it keeps")
        if letter in WGET_VALUED:
            take = 1 if at + 1 < len(letters) else 2
            call.kept.extend(w.raw for w in words[i:i + take])
            return take
    call.kept.append(word.raw)
    return 1


def _wget_output(call: WgetCall, words: list[Word], i: int, glued: str | None) -> int:
    """Record `-O FILE`, `-OFILE` or `--output-document=FILE`; the number of words the option took."""
    if call.output is not None:
        call.refuse("it writes more than one output")
    if glued is not None:
        call.output = glued
        if words[i].raw != words[i].value:
            call.refuse("its output option is quoted")
        return 1
    if i + 1 >= len(words):
        call.refuse("`-O` has no file")
        return 1
    call.output = "-" if words[i + 1].value == "-" else words[i + 1].raw
    return 2


def wget_refreshed(cache: str, prefix: str, call: WgetCall) -> str:
    """POSIX sh that brings the cached copy `$1` of the URL up to date with GNU wget's timestamping.

    `wget -N` is off with `-O`, so it runs in a folder of its own per URL (`-P`), where it names
    the file after the URL, sends `If-Modified-Since` with the copy's time (the server's
    Last-Modified) and on a 304 leaves the copy alone and exits 0. It writes the body in place,
    so a marker `$c.ok` stands for a complete copy: removed before wget runs, made after it
    succeeds; a folder without it (a build killed mid-transfer) is emptied before use."""
    assert call.url is not None
    options = " ".join([*call.kept, "-N", "-P", '"$c"'])
    return (f'set -- {call.url.raw} && [ $# = 1 ] && u=$1 && '
            f'c={cache}/wget-$(printf %s "$u" | sha256sum | cut -c1-64) && '
            '{ [ -e "$c.ok" ] || rm -rf "$c"; } && rm -f "$c.ok" && '
            f'{prefix}wget {options} "$u" && touch "$c.ok" && '
            'set -- "$c"/* && [ $# = 1 ] && [ -f "$1" ]')


def wget_sink(call: WgetCall) -> str:
    """What the original wget did with the body, done from the cached copy `$1`, with its time as wget sets it."""
    if call.output == "-":
        return 'cat "$1"'
    if call.output is not None:
        return f'cp "$1" {call.output} && touch -r "$1" {call.output}'
    # wget does not overwrite a file of that name: it writes NAME.1, NAME.2, ...
    return ('t=$(basename "$1") && i=0 && while [ -e "$t" ]; do i=$((i + 1)) && t=$(basename "$1").$i; done && '
            'cp "$1" "$t" && touch -r "$1" "$t"')


class DownloadRule(RunRule):
    """
    ## What it does
    Finds `curl` downloads in a RUN (`-o FILE`, `-O`, `> FILE`, `curl URL | tar -x`, `| sh`)
    and GNU `wget` ones (`-O FILE`, named after the URL, `wget -qO- URL | sh`) and keeps the
    downloaded file in a cache mount across builds, refreshed with a conditional request, then
    used exactly as before.

    ## Why is this bad?
    A release tarball, an install script or a model file is downloaded in full on every
    rebuild of the layer, though the server would answer "not modified" with no body.

    ## Example
    ```dockerfile
    RUN curl -fsSLO "https://nodejs.org/dist/v$NODE_VERSION/node-v$NODE_VERSION-linux-x64.tar.xz" \\
        && tar -xJf "node-v$NODE_VERSION-linux-x64.tar.xz" -C /usr/local --strip-components=1
    ```

    ## Use instead
    The curl command becomes a subshell (its variables stay there) that keeps the copy in
    `/var/cache/cachefix-downloads`, named by the SHA-256 of the URL, and copies it out:
    ```dockerfile
    RUN --mount=type=cache,target=/var/cache/cachefix-downloads,sharing=locked \\
        (u="https://nodejs.org/..." && c=/var/cache/cachefix-downloads/$(printf %s "$u" | sha256sum | cut -c1-64) \\
         && ... curl -fsSL -R "$@" --etag-save "$c.etag.part" -o "$c.part" "$u" && ... && cp "$c" "$(basename "$u")") \\
        && tar -xJf ...
    ```

    The cached copy's name is the SHA-256 of the URL as the shell expands it *when the RUN
    runs*, not when cachefix reads the file: a `--build-arg VERSION=...` or a variable the
    RUN sets itself (`$ARCH` in the official node images) then gets a file of its own, and
    two URLs never share one. The request carries the copy's ETag (`If-None-Match`), or, from
    a server that sends none, its Last-Modified time (`-z` with `-R`); a 304 sends no body and
    leaves the copy as it is. A new body goes to a temporary file that replaces the copy only
    once complete, so a failed transfer never leaves a broken copy behind. The mount is
    `sharing=locked`: two builds never write one copy at once. For a user other than root it is
    `/var/cache/cachefix-downloads-UID` with that uid and gid.

    Pipes (`curl URL | tar -x`, `| sh`, `| gpg --dearmor`) read the copy: on a 304 the
    conditional curl writes nothing, so the subshell that replaces curl refreshes the copy
    and writes it to the pipe (`cat`). The pipeline's status is still the last command's
    (or the first failure's under `pipefail`), as before. `curl URL > FILE` is the same.

    ## Fix safety
    The file the RUN uses holds the same bytes (a fresh one, or the copy the server says is
    current), gets the same name and the mode a new file gets; the user's options (headers,
    credentials, `-k`, retries, `-L`, `-f`) are kept. A RUN that checks a checksum
    (`sha256sum -c`) still checks the copy. Needs, in the image: `sha256sum` (coreutils or
    BusyBox) and curl 7.70 or later (`--etag-*` came in 7.68, and before 7.70 a 304 emptied
    the output); cachefix assumes the curl of Debian bookworm (7.88) and reports instead of
    fixing on images known to ship an older one (Ubuntu 20.04 and older, Debian 10 and older,
    CentOS, Alpine 3.12 and older). Not rewritten, and reported: options whose effect on the
    kept file cachefix does not know (`-J`, `-C`, `-D`, `-w`, `-i`, `-X`, `-d`, `--create-dirs`,
    ...), several URLs, `-O` with a URL holding `?`, `#` or `\\` (curl's name for the file
    depends on its version), an unquoted URL holding a variable the file does not set, curl
    inside `sh -c` or `$(...)`, a user whose uid the file does not show.

    `wget` (GNU) becomes a subshell too. `wget -N` (timestamping) does nothing with `-O`, so
    it refreshes the copy in a folder of its own per URL (`-P`, under `wget-` + the URL's
    SHA-256), where wget names the file after the URL and, from the copy's time (the server's
    Last-Modified), sends `If-Modified-Since`: on a 304 it writes nothing and exits 0. The copy
    is then copied to the `-O` file, or to the name wget gives it (`NAME.1` beside an existing
    `NAME`, as wget does), with the server's time as wget sets it, or written to the pipe. wget
    writes the body in place, so a marker file stands for a complete copy: removed before wget
    runs and made after it succeeds; a copy without one (a build killed mid-transfer) is removed
    before wget runs. A server that sends no Last-Modified gets a full download each time, as
    before. An unquoted URL is expanded as wget would get it and must be one word, or the RUN
    fails. Not rewritten, and reported: BusyBox wget (an Alpine or BusyBox image, or a stage
    that runs `apk`), which has no `-N` and names files its own way; options whose effect on the
    kept file cachefix does not know (`-c`, `-r`, `-m`, `-p`, `-i`, `-N`, `-nc`, `-P`, `-o`,
    `-e`, `--content-disposition`, ...); several URLs; a file written inside a pipeline.
    """

    code = "CF701"
    name = "download-cache-mount"
    manager = "download"
    summary = "curl/wget download without a cache mount: the whole file again on every rebuild"
    triggers = ("curl", "wget")

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        for command in run.commands:
            if command.name == "curl":
                yield from self._curl(run, command)
            elif command.name == "wget":
                yield from self._wget(run, command)

    def _curl(self, run: RunContext, command: Command) -> Iterable[Finding]:
        call = parse_curl(command)
        to_stdout = call.output is None and not call.remote_name
        if call.conditional or call.output == "/dev/null" or (to_stdout and not self._stdout_kept(run, command)):
            return
        url = call.url.raw if call.url is not None else "a URL"
        reason = call.refusal or self._refusal(run, command, call)
        if reason:
            yield self.at(run, command, f"curl downloads {url} on every rebuild, and cachefix cannot keep it in a "
                                        f"cache mount here: {reason}. The safe pattern: `{PATTERN}`")
            return
        yield self._fix(run, command, "curl", url, lambda cache, prefix: f"({refreshed(cache, prefix, call)} && "
                                                                       f"{sink(call)})")

    def _wget(self, run: RunContext, command: Command) -> Iterable[Finding]:
        call = parse_wget(command)
        if call.spider or call.conditional or command.substituted or call.output == "/dev/null" or \
                (call.output == "-" and not self._stdout_kept(run, command)):
            return
        url = call.url.raw if call.url is not None else "a URL"
        reason = call.refusal or self._wget_refusal(run, command, call)
        if reason:
            yield self.at(run, command, f"wget downloads {url} on every rebuild, and cachefix cannot keep it in a "
                                        f"cache mount here: {reason}. The safe pattern, with curl: `{PATTERN}`")
            return
        yield self._fix(run, command, "wget", url, lambda cache, prefix: f"({wget_refreshed(cache, prefix, call)} && "
                                                                       f"{wget_sink(call)})")

    def _fix(self, run: RunContext, command: Command, tool: str, url: str,
             script: Callable[[str, str], str]) -> Finding:
        """The finding that mounts the cache and replaces the command with `script(cache, its prefix)`."""
        assert command.span is not None and command.words[-1].span is not None and command.words[0].span is not None
        cache = CACHE if run.is_root else f"{CACHE}-{run.uid}"
        mount = mount_fix(run, [CacheMount(cache, sharing="locked", uid=None if run.is_root else run.uid,
                                           gid=None if run.is_root else run.gid)], self.options, self.manager)
        prefix = run.dockerfile.text[command.span[0]:command.words[0].span[0]]
        edit = Edit(command.span[0], command.words[-1].span[1], script(cache, prefix))
        return self.at(run, command, f"{tool} downloads {url} in full on every rebuild: keep it in a cache mount on "
                                     f"{cache}, refreshed with a conditional request, and use it as before",
                       [*mount.edits, edit], mounts=mount.flags)

    @staticmethod
    def _stdout_kept(run: RunContext, command: Command) -> bool:
        """Whether curl's stdout is the download: piped into the next command or redirected to a file."""
        if command.substituted:
            return False
        if command.in_pipeline:
            return command.joined_before != "|" and command.joined_after == "|"
        return _stdout_redirected(run, command)

    @staticmethod
    def _refusal(run: RunContext, command: Command, call: CurlCall) -> str:
        """Why this readable curl call still cannot be rewritten here ("" when it can)."""
        assert call.url is not None
        if call.output is not None and command.in_pipeline:
            return "it writes a file inside a pipeline"
        if call.remote_name and re.search(r"[?#\\]", call.url.raw):
            return "with `-O` and a URL holding `?`, `#` or `\\`, the file's name depends on curl's version"
        if old_curl(run.stage.base_image):
            return (f"the base image {run.stage.base_image} ships a curl older than 7.70, whose `--etag-compare` "
                    "empties the output on a 304")
        return _placement_refusal(run, command)

    @staticmethod
    def _wget_refusal(run: RunContext, command: Command, call: WgetCall) -> str:
        """Why this readable wget call still cannot be rewritten here ("" when it can)."""
        if call.output != "-" and command.in_pipeline:
            return "it writes a file inside a pipeline"
        if busybox_wget(run):
            return ("the image is Alpine or BusyBox, whose wget has no timestamping (`-N`) and names files its own "
                    "way")
        return _placement_refusal(run, command)


def _placement_refusal(run: RunContext, command: Command) -> str:
    """Why a download command cannot be replaced where it stands ("" when it can)."""
    if command.substituted or not run.shell_form or command.span is None or any(w.span is None for w in command.words):
        return "it runs inside `sh -c`, `$(...)` or an exec-form RUN, where cachefix does not rewrite it"
    if POSITIONAL.search(run.dockerfile.text[command.span[0]:command.span[1]]):
        return "it reads the shell's positional parameters, which the rewrite uses"
    if not run.is_root and run.uid is None:
        return (f"it runs as user '{run.user}' whose uid this file does not show, so the cache mount cannot be "
                "made writable for it (create the user with `useradd -u UID`)")
    return ""


def busybox_wget(run: RunContext) -> bool:
    """Whether the stage's wget is BusyBox's: an Alpine or BusyBox image, or a stage that runs `apk`."""
    stage = run.stage
    if BUSYBOX_IMAGE.search(f"{stage.base_image} {stage.image}"):
        return True
    return any(APK.search(" ".join(i.value)) for i in stage.instructions if i.keyword.upper() == "RUN")


def _stdout_redirected(run: RunContext, command: Command) -> bool:
    """Whether the redirections after the command's last word send its stdout to a file (`> FILE`, `&>>FILE`)."""
    if not command.words or command.words[-1].span is None:
        return False
    text, at = run.dockerfile.text, command.words[-1].span[1]
    while (match := REDIRECTION.match(text, at)) is not None:
        if match.group(1).lstrip("1").startswith((">", "&>")):
            return True
        at = match.end()
    return False
