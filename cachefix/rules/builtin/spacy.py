"""CF105 spacy: `spacy download` fetches its model again on every build, and no cache mount keeps it."""

from __future__ import annotations

import re
from collections.abc import Iterable

from cachefix.model import Finding
from cachefix.rewriter.context import RunContext
from cachefix.rules.calls import Invocation, option_value
from cachefix.rules.manager import ManagerRule

RELEASES = "https://github.com/explosion/spacy-models/releases/download"
URL_OPTIONS = frozenset({"--url", "-U"})
DIRECT = frozenset({"--direct", "-d", "-D"})
PLAIN = re.compile(r"[A-Za-z0-9_.-]+")


class SpacyRule(ManagerRule):
    """
    ## What it does
    Finds `python -m spacy download MODEL` (and `spacy download`) in a RUN and reports that
    every build downloads the model again, whatever cache mount the RUN has. It has no fix.

    ## Why is this bad?
    `spacy download` looks the model's version up in spaCy's compatibility table and runs
    `pip install https://github.com/explosion/spacy-models/releases/download/...whl`. GitHub
    answers that address with a redirect to a signed address that changes every few minutes,
    and pip's HTTP cache keeps a download under the address it finally came from and does not
    cache the redirect (pypa/pip#8643, #13396; spaCy's maintainers say so in explosion/spaCy#12188).
    So a cache mount on pip's cache (`/root/.cache/pip`) fills up with copies of the model that
    no later build finds: adding one would promise savings it does not give. Tested with pip
    23.2 against a server that redirects like GitHub: two installs with one cache downloaded
    the wheel twice, by a bare or a named URL; a named sdist was downloaded once.

    pip's *wheel* cache is keyed by the address asked for, but only for wheels pip builds from a
    source archive of a named requirement. That is the pattern that caches: pin the model as a
    named sdist requirement and give pip its cache mount (cachefix adds that mount, CF101).
    Pinning the version is a choice the file's author makes (`spacy download` picks the version
    matching the installed spaCy), so cachefix shows the pattern rather than writing it.

    A download from your own server (`--url`) is not reported: whether pip can cache it depends
    on that server.

    ## Example
    ```dockerfile
    RUN python -m spacy download en_core_web_sm
    ```

    ## Use instead
    ```dockerfile
    RUN --mount=type=cache,target=/root/.cache/pip pip install \\
        "en_core_web_sm @ https://github.com/explosion/spacy-models/releases/download/en_core_web_sm-3.8.0/en_core_web_sm-3.8.0.tar.gz"
    ```

    ## Fix safety
    No fix: the pattern that caches pins a version the original left to spaCy.
    """

    code = "CF105"
    name = "spacy-download"
    manager = "spacy"
    summary = "spacy download fetches the model on every build; no cache mount can keep it"
    triggers = ("spacy",)
    programs = frozenset({"spacy"})
    takes_value = URL_OPTIONS
    downloading = frozenset({"download"})

    def check(self, run: RunContext, state: object) -> Iterable[Finding]:
        for command, call in self.calls(run):
            if option_value(call.args, URL_OPTIONS) is None:
                yield self.at(run, command, self.message(call))

    @staticmethod
    def message(call: Invocation) -> str:
        """What happens, and the pinned requirement that caches, with the version when the command names one."""
        model = call.operands[1] if len(call.operands) > 1 and PLAIN.fullmatch(call.operands[1]) else "MODEL"
        name, version = model, "VERSION"
        if any(word.value in DIRECT for word in call.args) and "-" in model:
            name, version = model.rsplit("-", 1)
        return (f"spacy download {model} downloads the model again on every build, with or without a cache mount: "
                "pip gets it through GitHub's redirect to a signed address that changes every few minutes, and "
                "caches it under that address (pypa/pip#8643). To cache it, pin it as a named source archive, which "
                f"pip's wheel cache keeps: `pip install \"{name} @ {RELEASES}/{name}-{version}/{name}-{version}"
                ".tar.gz\"` with pip's cache mount")
