"""A small kit to drive kernel paths by hand on a machine without the workload's tasks."""

from typing import Any

from sim.mm.kernel import MmKernel
from sim.mm.checks import install as install_oracles
from sim.mm.objects import VM_MERGEABLE, PageAnon, PageKsm  # noqa: F401  (for tests)
from sim.params import resolve
from sim.scenarios import SCENARIOS
from sim.mm.scenarios.mm import HEAP_START, Proc, build_machine
from sim.mm.exit import do_exit
from sim.mm.fault import do_page_fault
from sim.mm.mmap import mm_alloc, mmap_region

LOCK_OPS = {"spin_lock", "spin_unlock", "spin_trylock", "lock_page", "trylock_page",
            "unlock_page", "rcu_read_lock", "rcu_read_unlock", "down_read", "up_read",
            "down_write", "up_write", "mutex_lock", "mutex_unlock", "wait_on_page_locked"}


def mm_kernel(seed: int = 0, variant: str = "v2.6.33", strategy: Any = None,
              **over: Any) -> MmKernel:
    import sim.mm.variants as variants
    p = resolve(SCENARIOS["mm"].schema(), [("", {k.replace("__", "."): v
                                                 for k, v in over.items()})], "test")
    k = MmKernel(p, seed=seed, variant=variants.get(variant), strategy=strategy)
    counter = [1_000_000]

    def content(mm=None, vpn=0):
        counter[0] += 1
        return counter[0]

    build_machine(k, p, content)
    install_oracles(k, p)
    return k


def new_process(k: MmKernel, task, name: str, npages: int, mergeable: bool = False,
                contents=None):
    """exec a process image in `task`: an anon heap of npages, all written once."""
    proc = Proc(len(k.machine.mms) + 1, name, 0, False)
    proc.task = task
    k.machine.tasklist[proc.pid] = proc                  # for_each_process
    mm = mm_alloc(k, name, proc)
    proc.mm = mm
    proc.heap = yield from mmap_region(k, task, mm, HEAP_START, npages,
                                       flags=VM_MERGEABLE if mergeable else 0)
    for i in range(npages):
        yield from do_page_fault(k, task, mm, HEAP_START + i, True)
        if contents is not None:
            mm.ptes[HEAP_START + i].page.content = contents[i]
    return proc


def exiting_owner(box: dict[str, Any], life_us: float = 5):
    """A task body: exec process X with one anon page (kept in box["proc"] and box["page"]),
    live `life_us`, exit: the owner whose anon_vma a racing migration holds."""
    def owner(k: MmKernel, t):
        box["proc"] = proc = yield from new_process(k, t, "X", 1)
        box["page"] = proc.mm.ptes[HEAP_START].page
        yield from k.sleep(t, life_us)
        yield from do_exit(k, t, proc)
    return owner


def lock_log(task, start_seq: int = 0) -> list[str]:
    """The task's lock operations (from its trace ring), as 'op class'."""
    out = []
    for seq, _t, _d, op, obj in task.ring:
        if seq < start_seq or op not in LOCK_OPS:
            continue
        out.append(op if obj is None else f"{op} {obj.cls.name}")
    return out


def next_seq(k: MmKernel) -> int:
    """A sequence number that orders after every ring entry so far."""
    return next(k.tracer._seq)


def run(k: MmKernel, name: str, body, *args) -> Any:
    """Spawn body(k, task, *args) as a task, run the kernel to quiescence, return (task, value)."""
    box = {}

    def main(k, task):
        box["value"] = yield from body(k, task, *args)

    t = k.spawn(name, main)
    k.run(until=10_000_000)
    return t, box.get("value")


def ksm_scan(k: MmKernel, task, rounds: int = 4, pages: int = 100):
    """ksmd's batches, each under ksm_thread_mutex: 4 rounds take identical pages through
    checksum, unstable tree and merge."""
    from sim.engine.locks import mutex_lock, mutex_unlock
    from sim.mm.ksm import ksm_do_scan
    for _ in range(rounds):
        yield from mutex_lock(k, task, k.machine.ksm.thread_mutex)
        yield from ksm_do_scan(k, task, pages)
        mutex_unlock(k, task, k.machine.ksm.thread_mutex)


def hotremove_block(k: MmKernel, task, blk):
    """Offline's migration step for one block, by hand: ksm_thread_mutex held (the
    MEM_GOING_OFFLINE notifier), the block isolated, do_migrate_range over all of it."""
    from sim.engine.locks import mutex_lock, mutex_unlock
    from sim.mm.memory_hotplug import do_migrate_range
    yield from mutex_lock(k, task, k.machine.ksm.thread_mutex)
    blk.state = "isolated"
    rc = yield from do_migrate_range(k, task, blk.start_pfn, blk)
    mutex_unlock(k, task, k.machine.ksm.thread_mutex)
    return rc
