"""Rich progress bars for ``spacescribe transcribe``: one per stage, one for the chunks."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from core.pipeline.run import Progress as PipelineProgress


class RichProgress(PipelineProgress):
    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.stage_task: TaskID | None = None
        self.chunk_task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self.stage_task is not None:
            self.bar.update(self.stage_task, completed=1)  # the last stage finished too
        self.bar.__exit__(None, None, None)

    def stage(self, name: str) -> None:
        if self.stage_task is not None:
            self.bar.update(self.stage_task, completed=1)
        self.stage_task = self.bar.add_task(name, total=1)

    def chunks(self, total: int, done: int) -> None:
        self.chunk_task = self.bar.add_task("chunks", total=total, completed=done)

    def chunk_done(self) -> None:
        if self.chunk_task is not None:
            self.bar.advance(self.chunk_task)
