"""kernel/fork.c: dup_mmap (fork), mmput and mmdrop."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import down_write, spin_lock, spin_unlock, up_write
from sim.mm.objects import Mm, Vma
from sim.engine.task import Task
from sim.mm import ksm
from sim.mm.memory import copy_page_range
from sim.mm.mmap import exit_mmap, mm_alloc
from sim.mm.rmap import anon_vma_link

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]


@kfunc
def dup_mmap(k: "MmKernel", task: Task, mm: Mm, oldmm: Mm) -> Gen:
    """Both mmap_sems for write (the child's nested); per vma: copy, anon_vma_link (tail of
    the shared anon_vma's list, before any pte is copied), file rmap, then copy_page_range."""
    yield from down_write(k, task, oldmm.mmap_sem)
    yield from down_write(k, task, mm.mmap_sem, subclass=1)     # down_write_nested
    yield from ksm.ksm_fork(k, task, mm, oldmm)
    for mpnt in list(oldmm.vmas):
        yield from k.step(task, k.costs.vma_copy)
        tmp = Vma(mm, mpnt.start, mpnt.end, mpnt.pgoff, mpnt.flags, anon_vma=mpnt.anon_vma,
                  file=mpnt.file, label=f"vma {mm.name}:{mpnt.start}")
        yield from anon_vma_link(k, task, tmp)
        if tmp.file is not None:
            yield from spin_lock(k, task, tmp.file.i_mmap_lock)
            tmp.file.i_mmap.append(tmp)                         # vma_prio_tree_add
            spin_unlock(k, task, tmp.file.i_mmap_lock)
        mm.vmas.append(tmp)
        yield from copy_page_range(k, task, mm, oldmm, mpnt)
    up_write(k, task, mm.mmap_sem)
    up_write(k, task, oldmm.mmap_sem)


@kfunc
def dup_mm(k: "MmKernel", task: Task, oldmm: Mm, name: str, owner: Any) -> Gen:
    yield from k.step(task, k.costs.mm_setup)
    mm = mm_alloc(k, name, owner)
    mm.mergeable = False
    yield from dup_mmap(k, task, mm, oldmm)
    return mm


def mmdrop(k: "MmKernel", mm: Mm) -> None:
    mm.mm_count -= 1
    if mm.mm_count == 0:
        mm.freed = True
        if mm in k.machine.mms:
            k.machine.mms.remove(mm)


@kfunc
def mmput(k: "MmKernel", task: Task, mm: Mm) -> Gen:
    """Drop an mm_users reference; the last one tears the address space down, in whichever
    task drops it (an exiting task, or a NUMA migrator that held a reference)."""
    mm.mm_users -= 1
    if mm.mm_users == 0:
        yield from ksm.ksm_exit(k, task, mm)
        yield from exit_mmap(k, task, mm)
        mmdrop(k, mm)


def get_task_mm(proc: Any) -> Mm | None:
    """task->mm with an mm_users reference, or None once exit_mm has cleared task->mm."""
    mm = proc.mm
    if mm is None:
        return None
    mm.mm_users += 1
    return mm
