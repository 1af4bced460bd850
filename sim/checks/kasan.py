"""anon_vma access checks, in the style of tag-based KASAN.

Every anon_vma pointer carries the allocation generation it was taken at (AnonVmaPtr). Each
access through it (an AnonVmaAccess event: its lock word, a refcount, its freeing) is
checked: a pointer whose object has been freed, or freed and reused, since is stale.

- `anon_vma_use_after_free` (harm `use_after_free`): the object's slab page has gone back to
  the page allocator (an RCU grace period passed after the slab emptied, and no reader held
  it up): the commit's "anon_vma's slab had already been destroyed".
- `anon_vma_stale`: the memory is still an anon_vma (SLAB_DESTROY_BY_RCU), but not the one
  the pointer meant: freed (`reused: false`) or reused by another process (`reused: true`).
  Harm `benign` if nothing but the lock word was written through the pointer: the spinlock
  is a real, constructed lock, and the walk changes only ptes holding a migration entry for
  the old page, which no other family has (Hugh Dickins, linux-mm 27 Aug 2010: "known that it
  all worked out okay in the rare case when a reused anon_vma got fed into the loops").
  Harm `corrupting` if anything else was written through it: a refcount, the slab freelist
  (a second free), or a pte written while the stale anon_vma's lock was held.
Each report says whether RCU was what kept the memory typed (`rcu_protected`: the accessor
has been inside an RCU read-side section since before the free) and classifies the race.

A `speculative` access (made only to validate the pointer under RCU, as page_lock_anon_vma
does before its page_mapped() re-check in 2.6.36) is safe by design and not reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..mm.events import AnonVmaAccess, PteChange
from ..objects import AnonVmaPtr
from ..task import Task

if TYPE_CHECKING:
    from ..mm.kernel import MmKernel

HARMS = ("benign", "corrupting", "use_after_free")


def harm_of(released: bool, writes: str | None) -> str:
    if released:
        return "use_after_free"
    return "benign" if writes in (None, "lock word") else "corrupting"


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
        freed = next((h for h in reversed(av.history)
                      if h["event"] == "free" and h.get("gen") == ptr.gen), None)
        freed_at = freed["at_us"] if freed else None
        reused = av.gen > ptr.gen
        released = av.slab.released
        harm = harm_of(released, writes)
        rcu_since = task.rcu_since if task.rcu_nesting else None
        protected = rcu_since is not None and freed_at is not None and rcu_since <= freed_at
        if protected:
            race = "freed inside the accessor's RCU read-side section"
        elif rcu_since is not None:
            race = "freed before the accessor's RCU read-side section began"
        else:
            race = "accessor not in an RCU read-side section"
        kind = "anon_vma_use_after_free" if released else "anon_vma_stale"
        mig = task.migration
        detail: dict[str, Any] = {
            "anon_vma": av.label, "access": access, "via": via, "written": writes,
            "page": page.label if page is not None else None,
            "migrating": mig.page.label if mig is not None else None,
            "pointer_gen": ptr.gen, "object_gen": av.gen,
            "reused": reused,
            "reused_by": av.owner if reused and av.live else None,
            "freed_at_us": freed_at, "freed_by": freed["by"] if freed else None,
            "freed_in": freed["in"] if freed else None,
            "accessor_rcu_since_us": None if rcu_since is None else round(rcu_since, 3),
            "rcu_protected": protected, "race": race,
            "slab_page": av.slab.sid, "slab_released": released,
            "slab_released_at_us": round(av.slab.released_at, 3) if released else None,
        }
        actors = [task]
        for h in av.history:
            t = h.get("tid", -1)
            other = k.tasks[t] if t >= 0 else None      # None: long dead, forgotten
            if other is not None and other not in actors and (
                    h is freed or (h["event"] == "alloc" and h.get("gen", 0) > ptr.gen)):
                actors.append(other)
        since = mig.start if mig is not None else None
        if freed_at is not None:
            since = min(since if since is not None else freed_at, freed_at - 5.0)
        verdict = ("stale (typed by SLAB_DESTROY_BY_RCU; only its lock word written)"
                   if harm == "benign" else "BUG")
        extra = ({"rcu": [(av.slab.released_at, f"rcu_free_slab: slab page {av.slab.sid} "
                                                 "to the page allocator")]}
                 if released else None)
        k.violations.report(
            kind, actors, detail, history=list(av.history),
            key=(task.tid, av.oid, ptr.gen, writes if harm != "benign" else "lock word"),
            since=since, harm=harm, verdict=verdict, extra=extra,
            mark=(task, self._mark(access, writes, av.label, via)))

    @staticmethod
    def _mark(access: str, writes: str, label: str, via: str) -> str:
        """The diagram's flagged step: what was done to which anon_vma, where."""
        if writes == "lock word":
            return f"{access}(&anon_vma->lock {label}) in {via}"
        what = access if writes in access else f"{access} ({writes})"
        return f"{what} of {label} in {via}"
