"""Migration oracles: leftover migration entries, and KSM stable_node consistency."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..objects import MIGRATION, Page, PageAnon, PageKsm, page_stable_node
from ..task import Task

if TYPE_CHECKING:
    from ..engine import Kernel


def page_kind(page: Page) -> str:
    return "ksm" if PageKsm(page) else "anon" if PageAnon(page) else \
        "file" if page.mapping is not None else "unmapped"


def check_migration_ptes(k: "Kernel", task: Task, page: Page, newpage: Page, rc: int,
                         kind: str, tag: int) -> None:
    """After unmap_and_move: no pte may still hold a migration entry this migration (`tag`)
    installed for the old page (a task faulting on it would BUG in migration_entry_to_page,
    or hang). `kind` is what the page was when the migration started (ksm, anon, file)."""
    if page.mig_entries <= 0:                 # cheap gate: no entry names this page at all
        return
    left = []
    actors = [task]
    for mm in k.machine.mms:
        for vpn, pte in mm.ptes.items():
            if pte.kind == MIGRATION and pte.page is page and pte.tag == tag:
                left.append({"mm": mm.name, "vpn": vpn, "write": pte.write})
                owner = mm.owner.task if mm.owner is not None else None
                if owner is not None and owner not in actors:
                    actors.append(owner)
    if not left:
        return
    detail: dict[str, Any] = {"page": page.label, "newpage": newpage.label, "rc": rc,
                              "entries_left": len(left), "page_kind": kind, "left_in": left}
    k.violations.report("migration_pte_leak", actors, detail,
                        key=("leak", tag), since=task.data.get("op_start"),
                        mark=(task, f"unmap_and_move done: {len(left)} migration "
                                    f"entries for {page.label} left"))


def check_stable_node(k: "Kernel", task: Task | None, page: Page) -> bool:
    """A KSM page's stable_node must be live and its kpfn must point back at the page."""
    node = page_stable_node(page)
    if node is None:
        return True
    if not node.freed and node.kpfn == page.pfn:
        return True
    k.violations.report(
        "stale_stable_node", [task] if task is not None else [],
        {"page": page.label, "stable_node": node.label, "kpfn": node.kpfn,
         "node_freed": node.freed,
         "problem": "stable_node freed under its KSM page" if node.freed else
                    f"kpfn {node.kpfn} does not point at pfn {page.pfn}"},
        history=list(node.history), key=("stable", node.nid, page.pfn),
        since=task.data.get("op_start") if task is not None else None)
    return False
