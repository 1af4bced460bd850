"""anon_vma access checks, in the style of tag-based KASAN.

Every anon_vma pointer carries the allocation generation it was taken at (AnonVmaPtr). Each
access through it (an AnonVmaAccess event: its lock word, a refcount, its freeing) is
checked: a pointer whose object has been freed, or freed and reused, since is stale.

- `anon_vma_use_after_free` (harm `use_after_free`): the object's slab page has gone back to
  the page allocator (an RCU grace period passed after the slab emptied, and no reader held
  it up): the commit's "anon_vma's slab had already been destroyed".
- `anon_vma_stale`: the memory is still an anon_vma (SLAB_DESTROY_BY_RCU), but not the one
  the pointer meant: freed (`reused: false`) or reused by another process (`reused: true`).
  Its harm, the first that applies:
  - `corrupting`: anything but the lock word was written through it: a refcount, the slab
    freelist (a second free), or a pte written while the stale anon_vma's lock was held;
  - `unprotected`: nothing guarantees the memory stays an anon_vma: the slab page was
    discarded (call_rcu(rcu_free_slab) queued) before the accessor's RCU read-side section
    began, or the accessor is in no read-side section. The grace period alone decides whether
    the page is gone yet: a use-after-free its length has not exposed (a bug);
  - `benign`: protected: the accessor's read-side section began before the slab page was
    discarded (RCU must keep the memory typed until the section ends), or the page is not
    discarded while the accessor is in RCU; and only the lock word was touched. The spinlock
    is a real, constructed lock, and the walk changes only ptes holding a migration entry for
    the old page, which no other family has (Hugh Dickins, linux-mm, 27 Aug 2010, on the
    reused case: "it all worked out okay in the rare case when a reused anon_vma got fed into
    the loops").
Protection follows the order of events, not the clock: a section protects against a discard
if its rcu_read_lock came before the discard's call_rcu (sim.engine.rcu, seq). So for a fixed
interleaving, `unprotected or use_after_free` does not depend on how long grace periods take.
Each report says whether the accessor was protected (`rcu_protected`), whether this
incarnation was freed before the accessor's section began (`freed_before_rcu`), when the slab
page was discarded and released, and classifies the race.

A `speculative` access (made only to validate the pointer under RCU, as page_lock_anon_vma
does before its page_mapped() re-check in 2.6.36) is safe by design and not reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.mm.events import AnonVmaAccess, PteChange
from sim.mm.objects import AnonVmaPtr, SlabPage
from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel

# in the order they are decided (harm_of); all but benign are bugs
HARMS = ("use_after_free", "corrupting", "unprotected", "benign")
BUG_HARMS = HARMS[:3]


def harm_of(released: bool, writes: str | None, protected: bool) -> str:
    """The harm of one access through a stale anon_vma pointer (module docstring)."""
    if released:
        return "use_after_free"
    if writes not in (None, "lock word"):
        return "corrupting"
    return "benign" if protected else "unprotected"


def rcu_protected(task: Task, slab: SlabPage) -> bool:
    """SLAB_DESTROY_BY_RCU keeps the slab page typed for this task: it is inside a read-side
    section that began before the page was discarded, or the page was not discarded."""
    if not task.rcu_nesting:
        return False
    return not slab.discarded or task.rcu_seq < slab.discard_seq


class AnonVmaChecker:
    def __init__(self, k: "MmKernel", params: dict[str, Any]) -> None:
        self.k = k
        self.stale_locked: dict[int, AnonVmaPtr] = {}   # tid -> stale anon_vma it has locked
        k.hooks.subscribe(AnonVmaAccess, self.on_access)
        k.hooks.subscribe(PteChange, self.on_pte)

    def on_access(self, ev: AnonVmaAccess) -> None:
        if ev.ptr.valid() or ev.speculative:
            return
        tid = ev.task.tid
        if ev.access == "spin_lock" and ev.held:
            self.stale_locked[tid] = ev.ptr
        elif ev.access == "spin_unlock" and self.stale_locked.get(tid) is ev.ptr:
            del self.stale_locked[tid]
        self.report(ev.task, ev.ptr, ev.access, ev.via, ev.page, ev.writes)

    def on_pte(self, ev: PteChange) -> None:
        """A pte written by a task that holds a stale anon_vma's lock was found through it."""
        if ev.task is None:
            return
        ptr = self.stale_locked.get(ev.task.tid)
        if ptr is not None:
            self.report(ev.task, ptr, "set_pte_at", ev.task.where(), None,
                        f"pte {ev.mm.name}:{ev.vpn}")

    def report(self, task: Task, ptr: AnonVmaPtr, access: str, via: str, page: Any,
               writes: str | None) -> None:
        k = self.k
        av = ptr.av
        slab = av.slab
        freed = av.frees[ptr.gen - 1]          # a stale pointer's incarnation was freed
        reused = av.gen > ptr.gen
        released = slab.released
        protected = rcu_protected(task, slab)
        harm = harm_of(released, writes, protected)
        rcu_since = task.rcu_since if task.rcu_nesting else None
        freed_before_rcu = None if rcu_since is None else freed.at_us < rcu_since
        if rcu_since is None:
            race = "accessor not in an RCU read-side section"
        elif not slab.discarded:
            race = "slab page not discarded; accessor inside an RCU read-side section"
        elif protected:
            race = "slab page discarded inside the accessor's RCU read-side section"
        else:
            race = "slab page discarded before the accessor's RCU read-side section began"
        kind = "anon_vma_use_after_free" if released else "anon_vma_stale"
        mig = task.migration
        detail: dict[str, Any] = {
            "anon_vma": av.label, "access": access, "via": via, "written": writes,
            "page": page.label if page is not None else None,
            "migrating": mig.page.label if mig is not None else None,
            "pointer_gen": ptr.gen, "object_gen": av.gen,
            "reused": reused,
            "reused_by": av.owner if reused and av.live else None,
            "freed_at_us": round(freed.at_us, 3), "freed_by": freed.by,
            "freed_in": freed.where,
            "accessor_rcu_since_us": None if rcu_since is None else round(rcu_since, 3),
            "rcu_protected": protected, "freed_before_rcu": freed_before_rcu, "race": race,
            "slab_page": slab.sid,
            "slab_discarded_at_us": round(slab.discarded_at, 3) if slab.discarded else None,
            "slab_released": released,
            "slab_released_at_us": round(slab.released_at, 3) if released else None,
        }
        actors = [task]
        freer = k.tasks[freed.tid] if freed.tid >= 0 else None    # None: long dead, forgotten
        if freer is not None and freer is not task:
            actors.append(freer)
        for h in av.history:
            t = h.get("tid", -1)
            other = k.tasks[t] if t >= 0 else None
            if other is not None and other not in actors and (
                    h["event"] == "alloc" and h.get("gen", 0) > ptr.gen):
                actors.append(other)
        since = mig.start if mig is not None else None
        since = min(since if since is not None else freed.at_us, freed.at_us - 5.0)
        verdict = ("stale (typed by SLAB_DESTROY_BY_RCU; only its lock word written)"
                   if harm == "benign" else "BUG")
        extra = ({"rcu": [(slab.released_at, f"rcu_free_slab: slab page {slab.sid} "
                                             "to the page allocator")]}
                 if released else None)
        k.report(
            kind, actors, detail, history=list(av.history),
            # one report per task, incarnation, harm and what was written: a walk that locked
            # a stale anon_vma benignly and unlocks it after its slab page went is two
            key=(task.tid, av.oid, ptr.gen, harm, writes or "lock word"),
            since=since, harm=harm, verdict=verdict, extra=extra,
            mark=(task, self._mark(access, writes, av.label, via)))

    @staticmethod
    def _mark(access: str, writes: str, label: str, via: str) -> str:
        """The diagram's flagged step: what was done to which anon_vma, where."""
        if writes == "lock word":
            return f"{access}(&anon_vma->lock {label}) in {via}"
        what = access if writes in access else f"{access} ({writes})"
        return f"{what} of {label} in {via}"
