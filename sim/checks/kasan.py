"""anon_vma access checks, in the style of tag-based KASAN.

Every anon_vma pointer carries the allocation generation it was taken at (AnonVmaPtr). Each
access through it (an AnonVmaAccess event: spin_lock, spin_unlock, a refcount, a free) is
checked: a pointer whose object has been freed, or freed and reused, since is stale.

- `anon_vma_use_after_free`: the object's slab page has gone back to the page allocator (an
  RCU grace period passed after the slab emptied, and no reader held it up).
- `anon_vma_stale`: the memory is still an anon_vma (SLAB_DESTROY_BY_RCU), but not the one the
  pointer meant: freed (`reused: false`) or reused by another process (`reused: true`).
Each report says whether RCU was what kept the memory typed (`rcu_protected`: the accessor
has been inside an RCU read-side section since before the free) and classifies the race.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..mm.events import AnonVmaAccess

if TYPE_CHECKING:
    from ..mm.kernel import MmKernel


class AnonVmaChecker:
    def __init__(self, k: "MmKernel", params: dict[str, Any]) -> None:
        self.k = k
        k.hooks.subscribe(AnonVmaAccess, self.on_access)

    def on_access(self, ev: AnonVmaAccess) -> None:
        if not ev.ptr.valid():
            self.report(ev)

    def report(self, ev: AnonVmaAccess) -> None:
        k, task, ptr = self.k, ev.task, ev.ptr
        av = ptr.av
        freed = next((h for h in reversed(av.history)
                      if h["event"] == "free" and h.get("gen") == ptr.gen), None)
        freed_at = freed["at_us"] if freed else None
        reused = av.gen > ptr.gen
        released = av.slab.released
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
            "anon_vma": av.label, "access": ev.access, "via": ev.via,
            "page": ev.page.label if ev.page is not None else None,
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
            if t >= 0 and k.tasks[t] not in actors and (
                    h is freed or (h["event"] == "alloc" and h.get("gen", 0) > ptr.gen)):
                actors.append(k.tasks[t])
        since = mig.start if mig is not None else None
        if freed_at is not None:
            since = min(since if since is not None else freed_at, freed_at - 5.0)
        k.violations.report(
            kind, actors, detail, history=list(av.history),
            key=(task.tid, av.oid, ptr.gen), since=since,
            mark=(task, f"{ev.access}(&anon_vma->lock {av.label}) in {ev.via}"))
