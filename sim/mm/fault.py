"""arch/x86/mm/fault.c: do_page_fault takes mmap_sem for read around handle_mm_fault."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import down_read, up_read
from sim.mm.objects import Mm
from sim.engine.task import Task
from sim.mm.memory import handle_mm_fault
from sim.mm.mmap import find_vma

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

VM_FAULT_SIGSEGV = 2


@kfunc
def do_page_fault(k: "MmKernel", task: Task, mm: Mm, vpn: int, write: bool
                  ) -> Generator[Any, Any, int]:
    yield from k.step(task, k.costs.fault_entry)
    yield from down_read(k, task, mm.mmap_sem)
    vma = find_vma(mm, vpn)
    if vma is None:
        up_read(k, task, mm.mmap_sem)
        return VM_FAULT_SIGSEGV
    try:
        ret = yield from handle_mm_fault(k, task, mm, vma, vpn, write)
    finally:
        if task in mm.mmap_sem.readers:
            up_read(k, task, mm.mmap_sem)
    return ret
