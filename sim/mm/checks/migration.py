"""Migration oracles: leftover migration entries, and KSM stable_node consistency.

It keeps a shadow count of the migration entries naming each page (from PteChange events),
so that the end of a migration that left none costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.mm.events import MigrationBegin, MigrationEnd, PteChange
from sim.mm.objects import MIGRATION, Page, PageAnon, PageKsm, page_stable_node
from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.mm.kernel import MmKernel


def page_kind(page: Page) -> str:
    return "ksm" if PageKsm(page) else "anon" if PageAnon(page) else \
        "file" if page.mapping is not None else "unmapped"


class MigrationChecker:
    def __init__(self, k: "MmKernel", params: dict[str, Any]) -> None:
        self.k = k
        self.entries: dict[Page, int] = {}     # page -> migration entries naming it
        self.kinds: dict[int, str] = {}        # migration tag -> what its page was
        k.hooks.subscribe(PteChange, self.on_pte)
        k.hooks.subscribe(MigrationBegin, self.on_begin)
        k.hooks.subscribe(MigrationEnd, self.on_end)

    def on_pte(self, ev: PteChange) -> None:
        old, new = ev.old, ev.new
        if old is not None and old.kind == MIGRATION:
            self.entries[old.page] -= 1
        if new is not None and new.kind == MIGRATION:
            self.entries[new.page] = self.entries.get(new.page, 0) + 1

    def on_begin(self, ev: MigrationBegin) -> None:
        self.kinds[ev.mig.tag] = page_kind(ev.mig.page)

    def on_end(self, ev: MigrationEnd) -> None:
        mig = ev.mig
        kind = self.kinds.pop(mig.tag)
        if ev.newpage is None:
            return
        self.check_migration_ptes(ev.task, mig.page, ev.newpage, ev.rc, kind, mig.tag,
                                  mig.start)
        if ev.rc == 0 and PageKsm(ev.newpage):
            check_stable_node(self.k, ev.task, ev.newpage, mig.start)

    def check_migration_ptes(self, task: Task, page: Page, newpage: Page, rc: int, kind: str,
                             tag: int, since: float | None = None) -> None:
        """After unmap_and_move: no pte may still hold a migration entry this migration
        (`tag`) installed for the old page (a task faulting on it would BUG in
        migration_entry_to_page, or hang). `kind` is what the page was when the migration
        started (ksm, anon, file)."""
        if self.entries.get(page, 0) <= 0:     # no entry names this page at all
            return
        left = []
        actors = [task]
        for mm in self.k.machine.mms:
            for vpn, pte in mm.ptes.items():
                if pte.kind == MIGRATION and pte.page is page and pte.tag == tag:
                    left.append({"mm": mm.name, "vpn": vpn, "write": pte.write})
                    owner = mm.owner.task if mm.owner is not None else None
                    if owner is not None and owner not in actors:
                        actors.append(owner)
        if not left:
            return
        detail: dict[str, Any] = {"page": page.label, "newpage": newpage.label, "rc": rc,
                                  "entries_left": len(left), "page_kind": kind,
                                  "left_in": left}
        self.k.report("migration_pte_leak", actors, detail,
                      key=("leak", tag), since=since,
                      mark=(task, f"unmap_and_move done: {len(left)} migration "
                                  f"entries for {page.label} left"))


def check_stable_node(k: "MmKernel", task: Task | None, page: Page,
                      since: float | None = None) -> bool:
    """A KSM page's stable_node must be live and its kpfn must point back at the page."""
    node = page_stable_node(page)
    if node is None:
        return True
    if not node.freed and node.kpfn == page.pfn:
        return True
    k.report(
        "stale_stable_node", [task] if task is not None else [],
        {"page": page.label, "stable_node": node.label, "kpfn": node.kpfn,
         "node_freed": node.freed,
         "problem": "stable_node freed under its KSM page" if node.freed else
                    f"kpfn {node.kpfn} does not point at pfn {page.pfn}"},
        history=list(node.history), key=("stable", node.nid, page.pfn), since=since)
    return False
