"""kernel/exit.c: a task's exit drops its mm."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..engine import kfunc
from ..task import Task
from .fork import mmput

if TYPE_CHECKING:
    from .kernel import MmKernel


@kfunc
def exit_mm(k: "MmKernel", task: Task, proc: Any) -> Generator[Any, Any, None]:
    mm = proc.mm
    if mm is None:
        return
    proc.mm = None                                  # task->mm = NULL (get_task_mm fails now)
    yield from mmput(k, task, mm)


@kfunc
def do_exit(k: "MmKernel", task: Task, proc: Any) -> Generator[Any, Any, None]:
    yield from k.step(task, k.costs.syscall)
    yield from exit_mm(k, task, proc)
