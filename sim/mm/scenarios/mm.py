"""The v2.6.33 mm model: processes that fault, write, fork, munmap and exit; ksmd; page
migration by memory hot-remove (no mmap_sem) or by the NUMA path (mmap_sem held); and,
each at its own rate, the memory-failure callers: soft offline by physical address (a
memory-error daemon writing /sys/devices/system/memory/soft_offline_page), soft offline by
madvise(MADV_SOFT_OFFLINE) from a thread of a process on its own heap (neither holds
mmap_sem), and poison injection (hard_offline_page: memory_failure, which kills the processes
mapping the page).

Every process lives in a *slot*: when it exits, a fresh one is exec'ed in its place after
`respawn_us`, so freed anon_vmas get reused by new processes. Processes also fork short-lived
children, which share the parent's anon_vma (one anon_vma per fork family before 2.6.34) and,
after a KSM merge, map KSM pages without rmap_items of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from sim.mm.checks import install as install_oracles
from sim.errors import InputError
from sim.mm.objects import (VM_MERGEABLE, AddressSpace, KsmState, Machine, MemBlock, Mm, Page, Vma)
from sim.params import Param
from sim.engine.task import Task
from sim.mm import Oops
from sim.mm.exit import do_exit
from sim.mm.fault import do_page_fault
from sim.mm.kernel import MmKernel
from sim.mm.fork import dup_mm, get_task_mm, mmput
from sim.mm.ksm import ksm_scan_thread
from sim.mm.madvise import MADV_SOFT_OFFLINE, sys_madvise
from sim.mm.memory_hotplug import offline_pages, online_pages
from sim.mm.mempolicy import do_migrate_pages
from sim.mm.memory_sysfs import PAGE_SHIFT, store_hard_offline_page, store_soft_offline_page
from sim.mm.mmap import mm_alloc, mmap_region, sys_munmap
from sim.mm.pgtable import pte_present

HEAP_START = 0x1000
FILE_START = 0x100000

PARAMS: tuple[Param, ...] = (
    Param("migration", str, "hotremove", "who migrates pages: memory hot-remove (offline_pages, "
          "no mmap_sem), the NUMA path (sys_migrate_pages, mmap_sem held), or nobody", "",
          choices=("hotremove", "numa", "none")),
    Param("processes", int, 16, "process slots (each exits and is replaced)", "", 1, 4096),
    Param("pages_per_process", int, 64, "anonymous pages in each process's heap vma", "pages",
          1, 4096),
    Param("file_pages", int, 8, "pages of one shared file every process maps privately "
          "(read-only text: migrated through rmap_walk_file)", "pages", 0, 4096),
    Param("ksm", bool, True, "ksmd runs and heaps are MADV_MERGEABLE"),
    Param("ksm_share", float, 0.3, "fraction of page contents drawn from a small pool of "
          "duplicates (mergeable by KSM)", "", 0, 1),
    Param("ksm_pool", int, 8, "distinct duplicated contents", "", 1, 10**6),
    Param("ksm_pages_to_scan", int, 100, "ksmd pages per batch (2.6.33 default)", "", 1, 10**6),
    Param("ksm_sleep_ms", float, 20.0, "ksmd sleep between batches (2.6.33 default)", "ms",
          0.001, 1e6),
    Param("fault_rate", float, 2000.0, "memory touches per second per process (each touch "
          "faults if its pte is empty, a migration entry or write-protected)", "1/s", 1, 1e8),
    Param("prefault", bool, True, "a new process writes every heap page once at start (as a "
          "program initialising its memory does)"),
    Param("write_frac", float, 0.1, "fraction of touches that write", "", 0, 1),
    Param("busy_frac", float, 0.3, "fraction of the time between touches spent computing on "
          "the CPU (the rest asleep)", "", 0, 1),
    Param("fork_rate", float, 5.0, "forks per second per process (children do not fork)",
          "1/s", 0, 1e6),
    Param("child_lifetime_ms", float, 20.0, "mean lifetime of a forked child", "ms", 0.001, 1e7),
    Param("exit_rate", float, 20.0, "exits per second per process (lifetime is exponential, "
          "mean 1000/exit_rate ms)", "1/s", 0.001, 1e6),
    Param("respawn_us", float, 100.0, "delay before a slot's next process is exec'ed", "us",
          0, 1e9),
    Param("remap_rate", float, 2.0, "munmap+mmap of the heap per second per process", "1/s",
          0, 1e6),
    Param("offline_interval_us", float, 2000.0, "hot-remove: pause between offline operations",
          "us", 1, 1e9),
    Param("online_delay_us", float, 1000.0, "hot-remove: how long an offlined block stays "
          "offline before it is onlined again", "us", 0, 1e9),
    Param("offline_timeout_ms", float, 120000.0, "offline_pages timeout (2.6.33: 120 s)", "ms",
          0.001, 1e9),
    Param("memory_blocks", int, 8, "memory blocks (sections) of the machine", "", 2, 4096),
    Param("block_pages", int, 256, "pages per memory block", "pages", 8, 1 << 20),
    Param("migrate_rate", float, 500.0, "NUMA: sys_migrate_pages calls per second", "1/s",
          0.001, 1e8),
    Param("migrate_move_all", bool, False, "NUMA: MPOL_MF_MOVE_ALL (also pages mapped more "
          "than once)"),
    Param("soft_offline_rate", float, 0.0, "memory-error daemon: writes per second of a page's "
          "physical address to /sys/devices/system/memory/soft_offline_page "
          "(soft_offline_page: migrate_pages with offlining=0 and no mmap_sem); the page is "
          "one mapped by a random process (0: no daemon)", "1/s", 0, 1e8),
    Param("madvise_soft_offline_rate", float, 0.0, "madvise(MADV_SOFT_OFFLINE) calls per "
          "second, each by a thread of a random process on one page of its own heap, while "
          "the process's main thread may munmap it (remap_rate) (0: none)", "1/s", 0, 1e8),
    Param("hard_offline_rate", float, 0.0, "poison injections per second: a page of a "
          "random process's heap written to /sys/devices/system/memory/hard_offline_page "
          "(__memory_failure) (0: none)", "1/s", 0, 1e8),
    Param("memory_failure_early_kill", bool, False, "vm.memory_failure_early_kill: "
          "memory_failure signals the processes mapping a poisoned page at once "
          "(collect_procs); otherwise they die when they touch its hwpoison entry (2.6.33 "
          "default: false)"),
    Param("anon_vma_per_slab", int, 8, "anon_vma objects per slab page (the real cache packs "
          "128 on x86_64; fewer stand for a busy machine whose slab pages empty often)", "", 1, 4096),
    Param("memcg_reclaim_prob", float, 0.0, "probability that unmap_and_move's "
          "mem_cgroup_prepare_migration (after lock_page, before rcu_read_lock) must reclaim "
          "from a memory cgroup at its limit and sleeps (0: no memcg pressure)", "", 0, 1),
    Param("memcg_reclaim_us", float, 2000.0, "mean sleep of a reclaiming memcg charge "
          "(exponential)", "us", 0, 1e7),
    Param("invariant_every_events", int, 50000, "run the whole-machine invariant checks every N "
          "events (0: never)", "", 0, 10**12),
    Param("costs.page_copy", float, 1.5, "copy_highpage of 4 KiB (docs/kernel.md 6: 1-2 us)",
          "us", 0, 1e6),
    Param("costs.pte_op", float, 0.2, "read or update one pte, or a small locked step "
          "(docs/kernel.md 6: 0.1-0.5 us)", "us", 0, 1e6),
    Param("costs.vma_visit", float, 0.2, "visit one vma in an rmap walk (docs/kernel.md 6)",
          "us", 0, 1e6),
    Param("costs.page_alloc", float, 0.5, "allocate a page", "us", 0, 1e6),
    Param("costs.memcmp", float, 0.5, "compare two pages (one tree level; docs/kernel.md 6: "
          "<= 1 us)", "us", 0, 1e6),
    Param("costs.checksum", float, 1.0, "KSM calc_checksum of a page", "us", 0, 1e6),
    Param("costs.anon_vma_alloc", float, 1.0, "anon_vma allocation (docs/kernel.md 6: ~1 us)",
          "us", 0, 1e6),
    Param("costs.lru_op", float, 0.1, "isolate or put back one LRU page", "us", 0, 1e6),
    Param("costs.tlb_flush", float, 1.0, "ptep_clear_flush (TLB shootdown)", "us", 0, 1e6),
    Param("costs.fault_entry", float, 1.0, "page-fault trap and do_page_fault entry", "us",
          0, 1e6),
    Param("costs.syscall", float, 0.5, "syscall or notifier entry", "us", 0, 1e6),
    Param("costs.migrate_prep", float, 72.0, "lru_add_drain_all (docs/kernel.md 6: ~72 us, "
          "35282a2de4e)", "us", 0, 1e6),
    Param("costs.vma_copy", float, 1.0, "create or copy one vma", "us", 0, 1e6),
    Param("costs.mm_setup", float, 20.0, "mm_alloc / exec set-up", "us", 0, 1e6),
)


def _fewer(v: float, floor: float) -> list[float]:
    """Smaller values to try, smallest first: a quarter, a half, three quarters."""
    return [x for x in (v / 4, v / 2, 3 * v / 4) if x >= floor]


def _ints(v: int, floor: int) -> list[int]:
    return sorted({x for x in (floor, v // 4, v // 2, 3 * v // 4) if floor <= x < v})


# What shrinking a timed reproducer may make smaller, smallest first (the seed is kept).
SHRINK: dict[str, Callable[[Any], list[Any]]] = {
    "duration_ms": lambda v: _fewer(v, 1.0),
    "processes": lambda v: _ints(v, 1),
    "pages_per_process": lambda v: _ints(v, 1),
    "memory_blocks": lambda v: _ints(v, 2),
}


@dataclass(eq=False)
class Proc:
    pid: int
    name: str
    slot: int
    child: bool
    mm: Mm | None = None
    task: Task | None = None
    heap: Vma | None = None
    live_children: int = 0
    parent: "Proc | None" = None
    sigpending: str | None = None      # SIGBUS or SIGKILL from memory_failure (none handled)


class MmModel:
    def __init__(self, k: MmKernel, p: dict[str, Any]) -> None:
        self.k = k
        self.p = p
        self.until_us = p["duration_ms"] * 1000.0
        m = build_machine(k, p, self.new_content)
        self.m = m
        self.libc = m.files[0]
        self._unique = 1_000_000
        self.pids = 0
        self.generation = [0] * p["processes"]
        self.procs: dict[int, Proc] = m.tasklist           # for_each_process
        self._due: dict[int, list[float]] = {}             # paced actors: next call due
        install_oracles(k, p)
        if p["ksm"]:
            k.spawn("ksmd", ksm_scan_thread, kind="ksmd")
        if p["migration"] == "hotremove":
            k.spawn("hotremove", self.hotremove_main, kind="hotremove")
        elif p["migration"] == "numa":
            k.spawn("numad", self.numa_main, kind="numa")
        if p["soft_offline_rate"] > 0:
            k.spawn("softoffline", self.softoffline_main, kind="softoffline")
        if p["madvise_soft_offline_rate"] > 0:
            k.spawn("madvise", self.madvise_main, kind="madvise")
        if p["hard_offline_rate"] > 0:
            k.spawn("hwpoison", self.hwpoison_main, kind="hwpoison")
        for slot in range(p["processes"]):
            self.start_process(slot, delay=0.0)

    # --- contents ---------------------------------------------------------------------------
    def new_content(self, mm: Mm | None = None, vpn: int = 0) -> int:
        rng = self.k.rng.workload
        if rng.chance(self.p["ksm_share"]):
            return 1 + rng.below(self.p["ksm_pool"])
        self._unique += 1
        return self._unique

    # --- processes ------------------------------------------------------------------------
    def start_process(self, slot: int, delay: float) -> None:
        self.generation[slot] += 1
        self.pids += 1
        proc = Proc(self.pids, f"proc{slot}.{self.generation[slot]}", slot, child=False)
        self.procs[proc.pid] = proc
        proc.task = self.k.spawn(proc.name, self.proc_main, proc, delay, kind="process")

    def proc_main(self, k: MmKernel, task: Task, proc: Proc, delay: float
                  ) -> Generator[Any, Any, None]:
        p = self.p
        rng = k.rng.workload
        if delay > 0:
            yield from k.sleep(task, delay)
        if proc.mm is None:
            yield from self.exec_mm(k, task, proc)
        mean_life = p["child_lifetime_ms"] * 1000.0 if proc.child else 1e6 / p["exit_rate"]
        deadline = k.env.now + rng.exponential(mean_life)
        p_fork = 0.0 if proc.child else p["fork_rate"] / p["fault_rate"]
        p_remap = p["remap_rate"] / p["fault_rate"]
        try:
            while k.env.now < deadline and proc.sigpending is None:
                gap = rng.exponential(1e6 / p["fault_rate"])
                yield from k.spend(task, gap * p["busy_frac"])                 # user mode
                yield from k.sleep(task, gap * (1.0 - p["busy_frac"]))
                if k.env.now >= deadline or proc.sigpending is not None:
                    break
                r = rng.uniform()
                if r < p_fork and proc.live_children == 0:
                    yield from self.fork(k, task, proc)
                elif r < p_fork + p_remap:
                    yield from self.remap(k, task, proc)
                else:
                    yield from self.touch(k, task, proc)
        except Oops as e:
            k.oops(task, e)                  # then do_exit, as from the oops path
        if proc.sigpending is not None:
            k.count(f"processes killed by {proc.sigpending}")     # default action: exit
        yield from do_exit(k, task, proc)
        del self.procs[proc.pid]
        k.count("exits")
        if proc.child:
            assert proc.parent is not None
            proc.parent.live_children -= 1
        else:
            self.start_process(proc.slot, delay=p["respawn_us"])

    def exec_mm(self, k: MmKernel, task: Task, proc: Proc) -> Generator[Any, Any, None]:
        p = self.p
        yield from k.step(task, k.costs.mm_setup)
        mm = mm_alloc(k, proc.name, proc)
        proc.mm = mm
        flags = VM_MERGEABLE if p["ksm"] else 0
        proc.heap = yield from mmap_region(k, task, mm, HEAP_START, p["pages_per_process"],
                                           flags=flags)
        if p["file_pages"]:
            yield from mmap_region(k, task, mm, FILE_START, p["file_pages"], file=self.libc,
                                   pgoff=0)
        if p["prefault"]:
            for vpn in range(HEAP_START, HEAP_START + p["pages_per_process"]):
                if proc.sigpending is not None:
                    break
                yield from self.access(k, task, mm, vpn, True)

    def touch(self, k: MmKernel, task: Task, proc: Proc) -> Generator[Any, Any, None]:
        p = self.p
        rng = k.rng.workload
        mm = proc.mm
        assert mm is not None and proc.heap is not None
        nfile = p["file_pages"]
        i = rng.below(p["pages_per_process"] + nfile)
        if i < p["pages_per_process"]:
            vpn = proc.heap.start + i
            write = rng.chance(p["write_frac"])
        else:
            vpn = FILE_START + (i - p["pages_per_process"])
            write = False
        yield from self.access(k, task, mm, vpn, write)

    def access(self, k: MmKernel, task: Task, mm: Mm, vpn: int, write: bool
               ) -> Generator[Any, Any, None]:
        """A load or store by the CPU: no fault if the pte allows it, else do_page_fault and
        retry (a fault on a migration entry waits for the migration, then retries)."""
        for _ in range(64):
            pte = mm.ptes.get(vpn)
            if pte_present(pte) and (pte.write or not write):
                if write:                          # the MMU writes; no fault
                    pte.page.content = self.new_content()
                return
            ret = yield from do_page_fault(k, task, mm, vpn, write)
            if ret:
                k.count(f"fault failed {ret}")
                return
        k.count("faults retried 64 times (stuck on a migration entry)")

    def fork(self, k: MmKernel, task: Task, proc: Proc) -> Generator[Any, Any, None]:
        assert proc.mm is not None
        yield from k.step(task, k.costs.syscall)
        self.pids += 1
        proc.live_children += 1
        child = Proc(self.pids, f"{proc.name}-c{self.pids}", proc.slot, child=True,
                     parent=proc)
        child.mm = yield from dup_mm(k, task, proc.mm, child.name, child)
        child.heap = next((v for v in child.mm.vmas if v.start == HEAP_START), None)
        self.procs[child.pid] = child
        child.task = k.spawn(child.name, self.proc_main, child, 0.0, kind="process")
        k.count("forks")

    def remap(self, k: MmKernel, task: Task, proc: Proc) -> Generator[Any, Any, None]:
        """munmap the heap (mmap_sem for write) and map a fresh one in its place."""
        mm = proc.mm
        assert mm is not None and proc.heap is not None
        yield from sys_munmap(k, task, mm, proc.heap)
        flags = VM_MERGEABLE if self.p["ksm"] else 0
        proc.heap = yield from mmap_region(k, task, mm, HEAP_START, self.p["pages_per_process"],
                                           flags=flags)
        k.count("heap remaps")

    # --- migrators ------------------------------------------------------------------------
    def hotremove_main(self, k: MmKernel, task: Task) -> Generator[Any, Any, None]:
        """echo offline > /sys/devices/system/memory/memoryN/state, round robin, then online
        it again after online_delay_us."""
        p = self.p
        yield from k.sleep(task, p["offline_interval_us"] * k.rng.workload.uniform())
        i = 0
        while True:
            blk = self.m.blocks[i % len(self.m.blocks)]
            i += 1
            if blk.state == "online":
                ret = yield from offline_pages(k, task, blk, p["offline_timeout_ms"] * 1000.0)
                if ret == 0:
                    yield from k.sleep(task, p["online_delay_us"])
                    yield from online_pages(k, task, blk)
            yield from k.sleep(task, p["offline_interval_us"])

    def numa_main(self, k: MmKernel, task: Task) -> Generator[Any, Any, None]:
        """A daemon calling sys_migrate_pages(pid) on random processes: get_task_mm (an
        mm_users reference) and, inside, mmap_sem for read, throughout the migration."""
        p = self.p
        rng = k.rng.workload
        while True:
            yield from k.sleep(task, rng.exponential(1e6 / p["migrate_rate"]))
            procs = [q for q in self.procs.values() if q.mm is not None]
            if not procs:
                continue
            mm = get_task_mm(rng.choice(procs))
            if mm is None:
                continue
            yield from do_migrate_pages(k, task, mm, p["migrate_move_all"])
            yield from mmput(k, task, mm)

    # --- the memory-failure callers ---------------------------------------------------------
    def pick_page(self, heap_only: bool) -> tuple[Proc, int, int] | None:
        """A random live process and one of its present ptes (its heap's only, or any):
        (process, vpn, pfn). As a daemon reading /proc/pid/pagemap would, with no lock."""
        rng = self.k.rng.workload
        procs = [q for q in self.procs.values() if q.mm is not None and q.heap is not None]
        if not procs:
            return None
        proc = rng.choice(procs)
        assert proc.mm is not None and proc.heap is not None
        heap = proc.heap
        vpns = [v for v, pte in proc.mm.ptes.items()
                if pte_present(pte) and (not heap_only or heap.covers(v))]
        if not vpns:
            return None
        vpn = rng.choice(vpns)
        return proc, vpn, proc.mm.ptes[vpn].page.pfn

    def paced(self, k: MmKernel, task: Task, rate: float) -> Generator[Any, Any, None]:
        """An actor's calls come at exponential intervals of mean 1/rate from the previous
        call's due time: it sleeps until the next is due, and goes on at once when it is
        behind (a loaded machine made it wait for a CPU), so it keeps to its rate."""
        box = self._due.setdefault(task.tid, [k.env.now])
        box[0] += k.rng.workload.exponential(1e6 / rate)
        if box[0] > k.env.now:
            yield from k.sleep(task, box[0] - k.env.now)
        else:
            yield from k.cond_resched(task)

    def softoffline_main(self, k: MmKernel, task: Task) -> Generator[Any, Any, None]:
        """A memory-error daemon (as mcelog's page-error trigger): echo the physical address
        of a page it predicts will fail > /sys/devices/system/memory/soft_offline_page, at
        exponential intervals. Its prediction is any mapped page of any process."""
        while True:
            yield from self.paced(k, task, self.p["soft_offline_rate"])
            picked = self.pick_page(heap_only=False)
            if picked is None:
                continue
            ret = yield from store_soft_offline_page(k, task, picked[2] << PAGE_SHIFT)
            k.count(f"soft_offline_page (sysfs) rc {ret}")

    def madvise_main(self, k: MmKernel, task: Task) -> Generator[Any, Any, None]:
        """madvise(addr, PAGE_SIZE, MADV_SOFT_OFFLINE) by a thread of a random process on a
        page of its heap, while the process's main thread computes, munmaps and remaps its
        heap, forks or exits. The thread is this one actor lending itself to the process for
        the call: it holds an mm_users reference for the call (a thread sharing the mm by
        CLONE_VM holds one for its life), takes no mmap_sem (madvise_hwpoison runs before
        sys_madvise takes it), and tears the mm down if the main thread exited meanwhile."""
        rng = k.rng.workload
        while True:
            yield from self.paced(k, task, self.p["madvise_soft_offline_rate"])
            procs = [q for q in self.procs.values() if q.mm is not None and q.heap is not None]
            if not procs:
                continue
            proc = rng.choice(procs)
            heap = proc.heap
            assert heap is not None
            mm = get_task_mm(proc)
            if mm is None:
                continue
            addr = heap.start + rng.below(heap.end - heap.start)
            ret = yield from sys_madvise(k, task, mm, addr, 1, MADV_SOFT_OFFLINE)
            k.count(f"madvise(MADV_SOFT_OFFLINE) rc {ret}")
            yield from mmput(k, task, mm)

    def hwpoison_main(self, k: MmKernel, task: Task) -> Generator[Any, Any, None]:
        """Poison injection (as the hwpoison test tools do): echo the physical address of a
        page of a random process's heap > /sys/devices/system/memory/hard_offline_page."""
        while True:
            yield from self.paced(k, task, self.p["hard_offline_rate"])
            picked = self.pick_page(heap_only=True)
            if picked is None:
                continue
            ret = yield from store_hard_offline_page(k, task, picked[2] << PAGE_SHIFT)
            k.count(f"hard_offline_page (sysfs) rc {ret}")

    # --- result -----------------------------------------------------------------------------
    def extra(self) -> dict[str, Any]:
        m, k = self.m, self.k
        live_av = sum(1 for a in m.anon_vmas if a.live)
        reused = m.anon_vmas_reused_gone + sum(1 for a in m.anon_vmas if a.gen > 1)
        return {"mm": {
            "ksm_pages_shared": m.ksm.pages_shared,
            "ksm_pages_sharing": m.ksm.pages_sharing,
            "ksm_stable_nodes": len(m.ksm.stable),
            "ksm_full_scans": m.ksm.seqnr,
            "anon_vmas_live": live_av,
            "anon_vma_objects": m.anon_vmas_made,
            "anon_vma_objects_reused": reused,
            "anon_vma_slab_pages": m.slab_pages_made,
            "anon_vma_slab_pages_released": m.slab_pages_released,
            "rcu_grace_periods": k.rcu.completed,
            "cpu_preemptions": k.cpus.preemptions,
            "pages_in_use": sum(1 for pg in m.pages.values() if not pg.free),
            "struct_pages": len(m.pages),           # ever allocated (memory is lazy)
            "blocks": {b.state: sum(1 for x in m.blocks if x.state == b.state)
                       for b in m.blocks},
            "live_processes": len(self.procs),
        }}


def validate(p: dict[str, Any]) -> None:
    need = p["processes"] * (p["pages_per_process"] + 1) + p["file_pages"]
    avail = (p["memory_blocks"] - 1) * p["block_pages"]
    if need > avail:
        raise InputError(
            f"memory too small: processes*(pages_per_process+1)+file_pages ({need} pages) "
            f"must fit in memory_blocks-1 blocks of block_pages ({avail} pages), so that a "
            f"block can be offlined")


# Measured resident bytes per page in use (struct page, its lock, pte, rmap and task state,
# with the workload's mix of processes), and the interpreter and model baseline.
BYTES_PER_PAGE = 1500
BASELINE_BYTES = 96 << 20


def footprint(p: dict[str, Any]) -> int:
    """Resident memory a run needs, from its size parameters: pages in use at once (every
    process's heap and one page table, twice over for forked children and copies in
    flight), not the machine's size, since struct pages exist only once allocated."""
    pages = 2 * (p["processes"] * (p["pages_per_process"] + 1) + p["file_pages"])
    return BASELINE_BYTES + BYTES_PER_PAGE * pages


def build_machine(k: MmKernel, p: dict[str, Any],
                  new_content: Callable[[Mm | None, int], int]) -> Machine:
    """The machine alone (memory, zone, KSM state, anon_vma cache, one shared file), hung on
    the kernel as k.machine; no tasks. Unit tests build kernel paths on this."""
    nblocks, bpages = p["memory_blocks"], p["block_pages"]
    pages: dict[int, Page] = {}                 # created as they are first allocated
    k.lock_class("PG_locked", "page")           # the page lock's class exists from the start
    blocks = [MemBlock(b, b * bpages, bpages) for b in range(nblocks)]
    ksm = KsmState(k.mutex("ksm_thread_mutex", "ksm"), k.spinlock("ksm_mmlist_lock", "ksm"),
                   run=p.get("ksm", False), pages_to_scan=p.get("ksm_pages_to_scan", 100),
                   sleep_us=p.get("ksm_sleep_ms", 20.0) * 1000.0)
    m = Machine(pages, blocks, k.spinlock("&zone->lru_lock", "zone Normal"), ksm,
                p["anon_vma_per_slab"], new_content=new_content,
                file_content=lambda mapping, index: 2_000_000_000 + index)
    m.files.append(AddressSpace("libc.so", k.spinlock("&mapping->i_mmap_lock", "libc.so"),
                                k.spinlock("&mapping->tree_lock", "libc.so")))
    k.machine = m
    return m


def build(k: MmKernel, p: dict[str, Any]) -> MmModel:
    return MmModel(k, p)
