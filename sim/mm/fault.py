"""arch/x86/mm/fault.c: do_page_fault takes mmap_sem for read around handle_mm_fault; a
fault on a hwpoison entry ends in do_sigbus (SIGBUS, BUS_MCEERR_AR) to the faulting process."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import down_read, up_read
from sim.mm.objects import Mm
from sim.engine.task import Task
from sim.mm.memory import VM_FAULT_HWPOISON, handle_mm_fault
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
    if ret & VM_FAULT_HWPOISON:
        do_sigbus(k, task, mm)
    return ret


def do_sigbus(k: "MmKernel", task: Task, mm: Mm) -> None:
    """mm_fault_error -> do_sigbus: force_sig_info(SIGBUS, BUS_MCEERR_AR) to current, the
    process that owns `mm` in the model; it dies at its next return to user mode."""
    if mm.owner is not None and getattr(mm.owner, "sigpending", None) is None:
        mm.owner.sigpending = "SIGBUS"
    k.count("SIGBUS on a hwpoisoned page (late kill)")
