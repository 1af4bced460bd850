"""mm/slub.c, for the one cache the model needs: "anon_vma", SLAB_DESTROY_BY_RCU, with a ctor.

- Each slab page holds `per_slab` objects, constructed (ctor: lock initialised, empty list,
  zero refcounts) when the page is created, never again.
- Each CPU allocates from its current slab page; a freed object goes back on its page's LIFO
  freelist, so the next allocation there reuses it at once ("a freed object can be reused at
  once by another anon_vma_prepare").
- A slab page whose objects are all free, and which is no CPU's current slab, leaves the cache
  at once (SLUB's min_partial taken as 0) and returns to the page allocator only after an RCU
  grace period (discard_slab -> free_slab -> call_rcu(rcu_free_slab)). From then on, touching
  one of its objects is a true use-after-free. Only readers whose RCU read-side section began
  before that call_rcu are guaranteed to hold it up (slab.discard_seq).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.mm.objects import AnonVma, Machine, SlabPage, history
from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


def _new_slab(k: "MmKernel", m: Machine) -> SlabPage:
    slab = SlabPage(m.slab_pages_made)
    m.slab_pages_made += 1
    m.slab_pages.append(slab)
    for _ in range(m.per_slab):
        oid = m.anon_vmas_made
        m.anon_vmas_made += 1
        av = AnonVma(oid, slab, k.spinlock("&anon_vma->lock", f"anon_vma#{oid}"))  # the ctor
        m.anon_vmas.append(av)
        slab.objects.append(av)
    slab.freelist = slab.objects[::-1]
    k.count("anon_vma slab pages allocated")
    return slab


def _cpu(task: Task) -> int:
    return task.cpu if task.cpu is not None else max(task.last_cpu, 0)


def kmem_cache_alloc(k: "MmKernel", task: Task) -> AnonVma:
    m: Machine = k.machine
    cpu = _cpu(task)
    slab = m.cpu_slab.get(cpu)
    if slab is None or not slab.freelist:
        slab = next((s for s in m.slab_pages if not s.discarded and s.freelist
                     and s not in m.cpu_slab.values()), None)
        if slab is None:
            slab = _new_slab(k, m)
        m.cpu_slab[cpu] = slab
    av = slab.freelist.pop()
    av.live = True
    av.gen += 1
    return av


def kmem_cache_free(k: "MmKernel", task: Task, av: AnonVma) -> None:
    m: Machine = k.machine
    av.live = False
    slab = av.slab
    slab.freelist.append(av)
    if len(slab.freelist) == len(slab.objects) and slab not in m.cpu_slab.values():
        # __slab_free: empty and no CPU's slab -> discard_slab; SLAB_DESTROY_BY_RCU:
        # free_slab defers the page to call_rcu(rcu_free_slab)
        slab.discarded = True
        slab.discarded_at = k.clock()
        k.count("anon_vma slab pages discarded")
        k.tracer.mark(task, "discard_slab: call_rcu(rcu_free_slab)")

        def rcu_free_slab() -> None:
            slab.released = True
            slab.released_at = k.clock()
            for o in slab.objects:
                history(o, k, None, "slab page released to the page allocator",
                        slab=slab.sid)
            # gone from the cache: stale pointers may still reach it, nothing else does
            m.slab_pages.remove(slab)
            m.slab_pages_released += 1
            m.anon_vmas_reused_gone += sum(1 for o in slab.objects if o.gen > 1)
            gone = set(map(id, slab.objects))
            m.anon_vmas[:] = [o for o in m.anon_vmas if id(o) not in gone]

        slab.discard_seq = k.rcu.call_rcu(rcu_free_slab)
