"""`cachefix fix` and `cachefix check`: files in, report and exit status out.

Everything a user can get wrong before a file is touched (an unknown code, a broken
configuration file, an --output that cannot be written) is found first, so such a run changes
nothing and ends with one line on stderr and exit status 2.

A file whose outcome is in the result cache (`cachefix.result_cache`) is neither parsed nor
linted, and the engine, the rules and the shell parser are imported only for a file that is not.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TextIO

from cachefix.compose import ComposeError, with_compose_builds
from cachefix.config import FAIL_ON, Config, ConfigError, Configurations, check_syntax, unknown_code
from cachefix.discovery import BadPath, BadPattern, find_dockerfiles, warn_on_stderr
from cachefix.files import (
    ChangedMeanwhile,
    Declined,
    UnreadableFile,
    read_dockerfile,
    read_text_or_none,
    write_atomically,
)
from cachefix.model import FileError, FileResult, LintReport, Outcome, Settings
from cachefix.result_cache import Cached, ResultCache, default_root, disabled_by_environment, text_digest
from cachefix.rules.registry import DeferredRule, UnknownRule, plugin_modules, select_rules
from cachefix.shown import escaped
from cachefix.workers import Orphaned, bind_to_parent

if TYPE_CHECKING:
    import argparse
    from types import SimpleNamespace

    Arguments = argparse.Namespace | SimpleNamespace  # what cachefix.cli parsed

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """Something the user asked for that cannot be done; one line, exit status 2."""


class Job(NamedTuple):
    """One file to lint, with the configuration that applies to it and the settings from it."""

    path: Path
    config: Config
    settings: Settings


def _codes(text: str | None) -> tuple[str, ...] | None:
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text is not None else None


def with_flags(config: Config, args: Arguments) -> Config:
    """The configuration with the command line's flags over it."""
    changes: dict[str, object] = {}
    if args.select is not None:
        changes["select"] = _codes(args.select) or None
    if args.ignore is not None:
        changes["ignore"] = _codes(args.ignore)
    if args.syntax is not None:
        try:  # what no configuration may hold either: more than a directive to write into a Dockerfile
            check_syntax(args.syntax)
        except ValueError as exc:
            raise UsageError(f"--syntax {exc}") from None
        changes["syntax"] = args.syntax
    if args.fail_on is not None:
        if args.fail_on not in FAIL_ON:
            raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}, not {args.fail_on!r}")
        changes["fail_on"] = args.fail_on
    if args.id_scope is not None:
        changes["options"] = config.options._replace(id_scope=args.id_scope)
        changes["managers"] = tuple((name, options._replace(id_scope=args.id_scope))
                                    for name, options in config.managers)
    return config._replace(**changes) if changes else config


def settings_for(config: Config, ignored: tuple[str, ...] = ()) -> Settings:
    rules = select_rules(list(config.select) if config.select else None, [*config.ignore, *ignored])
    return Settings(rules=[DeferredRule(rule, config.options_for(rule.manager)) for rule in rules],
                    syntax=config.syntax, images=dict(config.images))


def plan(args: Arguments) -> list[Job]:
    """Every file to lint with its settings; raises UsageError before any file is read."""
    try:
        configurations = Configurations(Path(args.config) if args.config else None)
        effective: dict[Config, Config] = {}
        settings: dict[tuple[Config, tuple[str, ...]], Settings] = {}
        jobs = []
        found_in: set[str] = set()  # the arguments that led to a file, and to a file not excluded
        linted_in: set[str] = set()
        for path, given in find_dockerfiles(with_compose_builds(args.paths, warn_on_stderr), args.exclude):
            found_in.add(given)
            applies = configurations.for_file(path)
            config = effective.setdefault(applies, with_flags(applies, args))
            if config.excludes(path):
                continue
            key = (config, config.ignored_codes(path))
            if key not in settings:
                settings[key] = settings_for(*key)
            jobs.append(Job(path, config, settings[key]))
            linted_in.add(given)
        _say_which_folders_are_empty(args.paths, found_in, linted_in)
        return jobs
    except (ConfigError, BadPath, BadPattern, ComposeError) as exc:
        raise UsageError(str(exc)) from None
    except UnknownRule as exc:
        raise UsageError(unknown_code(exc.args[0])) from None


def _say_which_folders_are_empty(paths: list[str], found_in: set[str], linted_in: set[str]) -> None:
    """One line on stderr for a folder argument that gave no file to lint: a typo, or a wrong guess
    at the names cachefix looks for."""
    for given in dict.fromkeys(paths):
        if given in linted_in or not os.path.isdir(given):
            continue
        if given in found_in:
            print(f"cachefix: every Dockerfile in {escaped(given)} is excluded by the configuration", file=sys.stderr)
        else:
            print(f"cachefix: no Dockerfiles in {escaped(given)} (names such as Dockerfile, Dockerfile.dev, "
                  "api.Dockerfile, Containerfile)", file=sys.stderr)


def process(path: Path, settings: Settings, *, fixing: bool, write: bool,
            cache: ResultCache | None = None) -> tuple[FileResult | None, list[FileError]]:
    """Lint (and fix) one file; problems become FileErrors and the file is left as it was."""
    try:
        read = read_dockerfile(path)
        key = _cache_key(cache, path, read.text, settings)
        cached = cache.get(key, read_text_or_none) if cache is not None and key is not None else None
        if cached is not None and not (fixing and any(f.fixable for f in cached.findings)):
            outcome, sources = Outcome(cached.findings, read.text, cached.findings, cached.ignored, cached.ignored,
                                       cached.skipped), None
        else:
            outcome, sources = _lint(path, read.text, settings, fixing=fixing)
    except Exception as exc:  # each kind becomes the file's error; the run goes on
        return None, [_file_error(path, exc)]
    result = FileResult(path, findings=outcome.findings, remaining=outcome.remaining,
                        ignored=outcome.still_ignored if fixing else outcome.ignored,
                        original=read.text, fixed=outcome.fixed, skipped=outcome.skipped)
    if write and result.changed:
        try:
            write_atomically(path, outcome.fixed, read)
        except Declined as exc:
            result.declined = str(exc)
            _not_written(result, outcome)
            return result, []
        except ChangedMeanwhile as exc:
            _not_written(result, outcome)
            return result, [FileError(path, str(exc))]
        except OSError as exc:
            _not_written(result, outcome)
            return result, [FileError(path, f"cannot write: {exc.strerror or exc}")]
    if cache is not None and key is not None and sources is not None and (write or not result.changed):
        _remember(cache, path, settings, outcome, sources)
    return result, []


def _lint(path: Path, text: str, settings: Settings, *, fixing: bool) -> tuple[Outcome, dict[Path, str | None]]:
    """The outcome, and the sibling Dockerfiles read for it (base images built in the tree)."""
    from cachefix.bases import SiblingBases
    from cachefix.engine import check, fix

    sources: dict[Path, str | None] = {}

    def read(candidate: Path) -> str | None:
        sources[candidate] = read_text_or_none(candidate)
        return sources[candidate]

    bases = SiblingBases(path, read=read)
    return (fix(text, settings, bases) if fixing else check(text, settings, bases)), sources


def _file_error(path: Path, exc: Exception) -> FileError:
    """What went wrong with one file. A bug in cachefix or a plugin rule is reported like the rest
    (the run goes on), unless CACHEFIX_DEBUG asks for the traceback."""
    from cachefix.engine import BrokenRewrite
    from cachefix.rewriter.errors import DockerfileSyntaxError

    if isinstance(exc, DockerfileSyntaxError):
        return FileError(path, exc.message, exc.line)
    if isinstance(exc, UnreadableFile | BrokenRewrite):
        return FileError(path, str(exc))
    if os.environ.get("CACHEFIX_DEBUG"):
        raise exc
    return FileError(path, f"internal error, the file is left as it was ({type(exc).__name__}: "
                           f"{escaped(str(exc))[:200]}); please report it with this file "
                           "(CACHEFIX_DEBUG=1 shows the traceback)")


def _settings_key(settings: Settings) -> str | None:
    """What of the settings an outcome depends on; None for rules not from the registry (never cached)."""
    if not all(isinstance(rule, DeferredRule) for rule in settings.rules):
        return None
    rules = [(tuple(rule.entry), rule.options) for rule in settings.rules]  # type: ignore[attr-defined]
    return repr((rules, settings.syntax, sorted(settings.images.items())))


def _cache_key(cache: ResultCache | None, path: Path, text: str, settings: Settings) -> str | None:
    described = _settings_key(settings) if cache is not None else None
    return None if cache is None or described is None else cache.key(path, text, described)


def _remember(cache: ResultCache, path: Path, settings: Settings, outcome: Outcome,
              sources: dict[Path, str | None]) -> None:
    """Cache what the text now on disk has: after a fix was written, the fixed text's remaining
    findings (for a check, or a fix that changed nothing, those are the text's findings)."""
    key = _cache_key(cache, path, outcome.fixed, settings)
    if key is not None:
        cache.put(key, Cached(outcome.remaining, outcome.still_ignored, outcome.skipped),
                  {candidate: text_digest(text) for candidate, text in sources.items()})


def _not_written(result: FileResult, outcome: Outcome) -> None:
    """The result of a fix that was not written: the file as it was, with all its findings."""
    result.fixed = result.original
    result.remaining = outcome.findings
    result.ignored = outcome.ignored


# Below this many files one process is quicker than starting workers.
PARALLEL_FROM = 48
_jobs: list[Job] = []  # what forked workers lint, inherited rather than pickled


def _lint_job(index: int, fixing: bool, write: bool, cache: ResultCache | None) -> tuple[FileResult | None,
                                                                                         list[FileError]]:
    job = _jobs[index]
    try:
        return process(job.path, job.settings, fixing=fixing, write=write, cache=cache)
    except Orphaned:  # a worker of a run that was killed: it must not write, nor wait for a reader
        os._exit(1)


def lint_all(jobs: list[Job], *, fixing: bool, write: bool,
             cache: ResultCache | None = None) -> Iterator[tuple[Job, tuple[FileResult | None,
                                                                                     list[FileError]]]]:
    """Each job with its result, in order; a large tree is split over the CPUs (forked workers:
    the rules are imported once, before the fork)."""
    global _jobs
    _jobs = jobs
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
    if len(jobs) < PARALLEL_FROM or workers < 2 or not hasattr(os, "fork"):
        for index, job in enumerate(jobs):
            yield job, _lint_job(index, fixing, write, cache)
        return
    import multiprocessing  # only for large trees: a hook checking one file never pays for it
    from concurrent.futures import ProcessPoolExecutor

    _import_before_fork(jobs)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=bind_to_parent, initargs=(os.getpid(),)) as pool:
        chunk = max(1, len(jobs) // (workers * 4))
        results = pool.map(functools.partial(_lint_job, fixing=fixing, write=write, cache=cache), range(len(jobs)),
                           chunksize=chunk)
        yield from zip(jobs, results, strict=True)


def _import_before_fork(jobs: list[Job]) -> None:
    """Every rule the jobs may run, and the shell parser, imported once for all the workers (a large
    tree needs most of them) rather than in each."""
    from cachefix.rewriter.shell import load_parser

    for settings in {id(job.settings): job.settings for job in jobs}.values():
        for rule in settings.rules:
            if isinstance(rule, DeferredRule):
                rule.rule  # noqa: B018 -- loads it
    load_parser()


def unified_diff(result: FileResult) -> str:
    import difflib  # only for --diff

    return "".join(difflib.unified_diff(
        result.original.splitlines(keepends=True), (result.fixed or "").splitlines(keepends=True),
        fromfile=f"a/{result.path}", tofile=f"b/{result.path}"))


def _open_output(name: str | None, jobs: list[Job]) -> TextIO | None:
    """The --output file, opened (so emptied) only once it is known not to be a file being linted."""
    if name is None:
        return None
    try:
        if os.path.exists(name) and any(_same_file(name, job.path) for job in jobs):
            raise UsageError(f"--output {name} is one of the files being checked: the report would replace it")
        return open(name, "w", encoding="utf-8")  # closed in run_lint
    except OSError as exc:
        raise UsageError(f"cannot write the report to {name}: {exc.strerror or exc}") from None


def _same_file(name: str, path: Path) -> bool:
    try:
        return os.path.samefile(name, path)
    except OSError:  # a file that cannot be read: its job will say so
        return False


def _result_cache(args: Arguments) -> ResultCache | None:
    """The cache of outcomes, unless --no-cache or CACHEFIX_NO_CACHE turns it off."""
    if getattr(args, "no_cache", False) or disabled_by_environment():
        return None
    return ResultCache(default_root(), plugin_modules())


def run_lint(args: Arguments) -> int:
    fixing = args.command == "fix"
    diff_only = fixing and getattr(args, "diff", False)
    try:
        jobs = plan(args)
        output = _open_output(args.output, jobs)
    except UsageError as exc:
        print(f"cachefix: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from cachefix.report.progress import with_progress

    # In --diff mode the report describes the fixed text, as if the diff had been applied.
    report = LintReport(fixing=fixing)
    failing = False
    outcomes = lint_all(jobs, fixing=fixing, write=fixing and not diff_only, cache=_result_cache(args))
    for job, (result, errors) in with_progress(outcomes, len(jobs), "Fixing" if fixing else "Checking",
                                               enabled=not args.quiet):
        report.errors.extend(errors)
        if result is None:
            continue
        if result.declined:
            warn_on_stderr(f"{result.path}: {result.declined}")
        report.files.append(result)
        if diff_only and result.changed:
            sys.stdout.write(unified_diff(result))
        result.release_texts(fixing)  # what the report needs of it is kept: a large tree stays small
        left = result.remaining if fixing else result.findings
        failing = failing or (diff_only and result.changed) or any(job.config.fails(f.severity) for f in left)
    try:
        _render(report, args, output, diff_only=diff_only)
    finally:
        if output is not None:
            output.close()
    if report.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if failing else EXIT_CLEAN


def _render(report: LintReport, args: Arguments, output: TextIO | None, *, diff_only: bool) -> None:
    """The report to --output, or stdout (stderr with --diff, so stdout stays a clean patch).

    --statistics with a machine-readable format prints the table on stderr, for the CI log.
    """
    from cachefix.report import ReportOptions, render

    stream = output or (sys.stderr if diff_only else sys.stdout)
    options = ReportOptions(color=not args.no_color, show_ignored=args.show_ignored,
                            statistics=args.statistics, quiet=args.quiet, dry_run=diff_only)
    render(report, args.format, options, stream)
    if args.statistics and args.format != "text":
        from cachefix.report.items import items
        from cachefix.report.statistics import statistics_lines

        sys.stderr.write("".join(line + "\n" for line in statistics_lines(items(report))))
