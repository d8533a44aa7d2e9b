"""What a stage's neighbours do with it: the files copied in before a RUN, and whether what a RUN
downloads is used after the build (by the image's command, or copied into another stage).

It reads the stages `context.replay` recorded once, each with its parent, so every rule asks
the same questions of the same lineage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from cachefix.rewriter.context import RunContext, Stage
from cachefix.rewriter.dockerfile import Instruction
from cachefix.rewriter.mounts import is_within
from cachefix.rewriter.shell import Command, commands, exec_form_commands


def lineage(stages: Sequence[Stage], index: int) -> list[int]:
    """The stage and the stages it is built from, nearest first."""
    found, parent = {index: None}, stages[index].parent  # a dict: ordered, and a linear walk
    while parent is not None and parent not in found:
        found[parent] = None
        parent = stages[parent].parent
    return list(found)


def descendants(stages: Sequence[Stage], index: int) -> set[int]:
    """The stage and every stage built FROM it, directly or not (a parent precedes its children)."""
    family = {index}
    for stage in stages:
        if stage.parent in family:
            family.add(stage.index)
    return family


def earlier_instructions(run: RunContext) -> Iterator[Instruction]:
    """Every instruction before the RUN in its stage and in the stages it is built from."""
    stages = run.replay.stages
    for index in lineage(stages, run.stage.index):
        for instruction in stages[index].instructions:
            if instruction is run.instruction:
                break
            yield instruction


def copied_into(run: RunContext, folder: str) -> bool:
    """Whether a COPY or ADD before this RUN (in its stage or one it is built from) puts files
    into `folder`: a cache mount there would hide them, as one on `~/.m2` hides `settings.xml`."""
    for instruction in earlier_instructions(run):
        destination = instruction.value[-1] if instruction.value else ""
        if instruction.keyword in ("COPY", "ADD") and destination.startswith("/") and is_within(destination, folder):
            return True
    return False


def _runs(instruction: Instruction, uses: Callable[[Command], bool]) -> bool:
    found = exec_form_commands(instruction.value) if instruction.json else commands(" ".join(instruction.value))
    return any(uses(c) for c in found)


def used_after_build(run: RunContext, folders: Sequence[str], uses: Callable[[Command], bool]) -> str | None:
    """Why what this RUN downloads into `folders` is needed after the build, or None: the image
    runs the tool when it starts (`uses` says which commands do: `go run .`), or a `COPY --from=`
    copies the folder into another stage. A cache mount would leave the downloads out of both."""
    stages = run.replay.stages
    family = descendants(stages, run.stage.index)
    for index in sorted(family | set(lineage(stages, run.stage.index))):
        for instruction in stages[index].instructions:
            if instruction.keyword in ("CMD", "ENTRYPOINT") and _runs(instruction, uses):
                return f"the image runs `{' '.join(instruction.value)}` when it starts"
    sources = {str(i) for i in family} | {stages[i].name for i in family if stages[i].name}
    for stage in stages:
        for instruction in stage.instructions:
            source = next((v for v in instruction.flag_values("from") if v), None)
            if instruction.keyword in ("COPY", "ADD") and source is not None and source.lower() in sources:
                for path in instruction.value[:-1]:
                    if any(is_within(path, folder) for folder in folders):
                        return f"`{instruction.keyword} --from={source} {path}` copies them into another stage"
    return None
