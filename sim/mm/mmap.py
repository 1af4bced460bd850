"""mm/mmap.c: mm and vma set-up, exit_mmap (no mmap_sem), munmap (mmap_sem for write)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.engine.kernel import kfunc
from sim.engine.locks import down_write, spin_lock, spin_unlock, up_write
from sim.mm.objects import VM_MAYWRITE, VM_MERGEABLE, AddressSpace, Machine, Mm, Vma
from sim.engine.task import Task
from sim.mm import ksm
from sim.mm.memory import unmap_vmas
from sim.mm.rmap import anon_vma_unlink
from sim.mm.tlb import tlb_finish_mmu, tlb_gather_mmu

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

Gen = Generator[Any, Any, Any]


def mm_alloc(k: "MmKernel", name: str, owner: Any) -> Mm:
    m: Machine = k.machine
    mid = m.next_mm
    m.next_mm += 1
    mm = Mm(mid, name, k.rwsem("&mm->mmap_sem", f"mm {name}"),
            k.spinlock("&mm->page_table_lock", f"mm {name}"), owner=owner)
    m.mms.append(mm)
    return mm


def find_vma(mm: Mm, vpn: int) -> Vma | None:
    for vma in mm.vmas:
        if vma.covers(vpn):
            return vma
    return None


@kfunc
def mmap_region(k: "MmKernel", task: Task, mm: Mm, start: int, npages: int,
                file: AddressSpace | None = None, pgoff: int | None = None,
                flags: int = 0) -> Gen:
    """do_mmap_pgoff under mmap_sem for write: a private anon (or file) vma (MAP_PRIVATE:
    VM_MAYWRITE, so a COW mapping even when the file is read-only)."""
    yield from down_write(k, task, mm.mmap_sem)
    yield from k.step(task, k.costs.vma_copy)
    vma = Vma(mm, start, start + npages, start if pgoff is None else pgoff,
              flags | VM_MAYWRITE, file=file,
              label=f"vma {mm.name}:{start}")
    if file is not None:
        yield from spin_lock(k, task, file.i_mmap_lock)
        file.i_mmap.append(vma)
        spin_unlock(k, task, file.i_mmap_lock)
    mm.vmas.append(vma)
    mm.vmas.sort(key=lambda v: v.start)
    if flags & VM_MERGEABLE:
        yield from ksm.ksm_madvise(k, task, mm, vma)
    up_write(k, task, mm.mmap_sem)
    return vma


@kfunc
def unlink_file_vma(k: "MmKernel", task: Task, vma: Vma) -> Gen:
    f = vma.file
    if f is None:
        return
    yield from spin_lock(k, task, f.i_mmap_lock)
    if vma in f.i_mmap:
        f.i_mmap.remove(vma)
    spin_unlock(k, task, f.i_mmap_lock)


@kfunc
def free_pgtables(k: "MmKernel", task: Task, vmas: list[Vma]) -> Gen:
    """Hide each vma from rmap (anon_vma_unlink, unlink_file_vma), then free its tables."""
    for vma in vmas:
        yield from anon_vma_unlink(k, task, vma)
        yield from unlink_file_vma(k, task, vma)
        yield from k.step(task, k.costs.pte_op)                 # free_pgd_range


@kfunc
def remove_vma(k: "MmKernel", task: Task, vma: Vma) -> Gen:
    yield from k.step(task, k.costs.vma_visit)
    mm = vma.mm
    if vma in mm.vmas:
        mm.vmas.remove(vma)


@kfunc
def exit_mmap(k: "MmKernel", task: Task, mm: Mm) -> Gen:
    """The last user is gone: no mmap_sem, no page lock. Migration entries are zapped without
    waiting for the migration, and an anon_vma whose list empties is freed."""
    yield from k.step(task, k.costs.syscall)                    # mmu_notifier_release, ...
    vmas = list(mm.vmas)
    if not vmas:
        return
    tlb = tlb_gather_mmu(k, task, mm)                           # preemption off
    yield from unmap_vmas(k, task, tlb, vmas)
    yield from free_pgtables(k, task, vmas)
    tlb_finish_mmu(k, task, tlb)
    for vma in vmas:                                            # preemptible again
        yield from remove_vma(k, task, vma)
    mm.ptls.clear()


@kfunc
def unmap_region(k: "MmKernel", task: Task, mm: Mm, vmas: list[Vma]) -> Gen:
    tlb = tlb_gather_mmu(k, task, mm)
    yield from unmap_vmas(k, task, tlb, vmas)
    yield from free_pgtables(k, task, vmas)
    tlb_finish_mmu(k, task, tlb)


@kfunc
def do_munmap(k: "MmKernel", task: Task, mm: Mm, vma: Vma) -> Gen:
    """munmap of one whole vma (caller holds mmap_sem for write)."""
    mm.vmas.remove(vma)                                         # detach_vmas_to_be_unmapped
    yield from unmap_region(k, task, mm, [vma])
    yield from k.step(task, k.costs.vma_visit)                  # remove_vma_list


@kfunc
def sys_munmap(k: "MmKernel", task: Task, mm: Mm, vma: Vma) -> Gen:
    yield from k.step(task, k.costs.syscall)
    yield from down_write(k, task, mm.mmap_sem)
    if vma in mm.vmas:
        yield from do_munmap(k, task, mm, vma)
    up_write(k, task, mm.mmap_sem)
