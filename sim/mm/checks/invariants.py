"""Periodic whole-machine consistency checks (run between events: no kernel step is half
done then, because each pte update and its rmap update happen in one step).

- every present pte maps an allocated page, and each page's mapcount equals the number of
  present ptes mapping it;
- anon_vma lists hold exactly the linked vmas that point to them;
- every KSM page's stable_node is live and points back at it (stale_stable_node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.mm.events import VmBug
from sim.mm.objects import PRESENT, PageKsm
from sim.mm.checks.migration import check_stable_node

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


class Invariants:
    """Runs check_invariants every `invariant_every_events` events (0: never), and reports
    the BUG_ON-like conditions kernel paths meet (VmBug) as they happen."""

    def __init__(self, k: "MmKernel", params: dict[str, Any]) -> None:
        every = params.get("invariant_every_events", 0)
        if every:
            k.observe(every, lambda: check_invariants(k))
        k.hooks.subscribe(VmBug, lambda ev: k.report(
            "invariant", [ev.task] if ev.task is not None else [], ev.detail, key=ev.key))


def check_invariants(k: "MmKernel") -> None:
    m = k.machine
    report = k.report
    present: dict[int, int] = {}
    for mm in m.mms:
        for vpn, pte in mm.ptes.items():
            if pte.kind != PRESENT:
                continue
            page = pte.page
            if page.free:
                report("invariant", [], {"what": "pte maps a freed page", "mm": mm.name,
                                         "vpn": vpn, "page": page.label},
                       key=("pte->free", mm.mid, vpn, page.pfn))
            present[page.pfn] = present.get(page.pfn, 0) + 1
        for vma in mm.vmas:
            if vma.linked and vma.anon_vma is not None and vma not in vma.anon_vma.av.head:
                report("invariant", [], {"what": "linked vma missing from its anon_vma's list",
                                         "vma": vma.label, "anon_vma": vma.anon_vma.label},
                       key=("unlisted vma", id(vma)))
    for page in m.pages.values():
        if page.free:
            continue
        n = present.get(page.pfn, 0)
        if page.mapcount + 1 != n:
            report("invariant", [], {"what": "mapcount disagrees with present ptes",
                                     "page": page.label, "mapcount": page.mapcount + 1,
                                     "present_ptes": n},
                   key=("mapcount", page.pfn, page.mapcount, n))
        if PageKsm(page):
            check_stable_node(k, None, page)
    for av in m.anon_vmas:
        if not av.live:
            continue
        for vma in av.head:
            if not vma.linked or vma.anon_vma is None or vma.anon_vma.av is not av \
                    or vma.anon_vma.gen != av.gen:
                report("invariant", [], {"what": "anon_vma list holds a vma not pointing to it",
                                         "anon_vma": av.label, "vma": vma.label},
                       key=("foreign vma", av.oid, av.gen, id(vma)))
