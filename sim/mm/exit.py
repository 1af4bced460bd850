"""kernel/exit.c: a task's exit drops its mm."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import down_read, up_read
from sim.engine.task import Task
from sim.mm.fork import mmput

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


@kfunc
def exit_mm(k: "MmKernel", task: Task, proc: Any) -> Generator[Any, Any, None]:
    """Clear task->mm under mmap_sem (read), then drop the mm (core-dump synchronisation and
    the lazy-TLB active_mm reference are not modelled)."""
    mm = proc.mm
    if mm is None:
        return
    yield from down_read(k, task, mm.mmap_sem)
    proc.mm = None                                  # task->mm = NULL (get_task_mm fails now)
    up_read(k, task, mm.mmap_sem)
    yield from mmput(k, task, mm)


@kfunc
def do_exit(k: "MmKernel", task: Task, proc: Any) -> Generator[Any, Any, None]:
    yield from k.step(task, k.costs.syscall)
    yield from exit_mm(k, task, proc)
