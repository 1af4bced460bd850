"""The modelled kernel paths: one module per kernel source file, functions named like the
kernel's, each taking its locks in the kernel's order. Generator functions can wait: call them
with `yield from`. Return codes are the kernel's (negative errno, SWAP_*)."""

SWAP_SUCCESS = 0
SWAP_AGAIN = 1
SWAP_FAIL = 2

EIO = -5
ENXIO = -6
EAGAIN = -11
ENOMEM = -12
EFAULT = -14
EBUSY = -16

TTU_UNMAP = 0
TTU_MIGRATION = 1
TTU_IGNORE_MLOCK = 1 << 8      # include/linux/rmap.h (2.6.33): flags above the action byte
TTU_IGNORE_ACCESS = 1 << 9
TTU_IGNORE_HWPOISON = 1 << 10


from sim.engine.kernel import Oops  # noqa: E402,F401  (re-exported: the mm paths raise it)


# mm/ksm.c and the core mm call each other, as in the kernel, which breaks the cycle with
# include/linux/ksm.h: rmap.c calls rmap_walk_ksm and try_to_unmap_ksm, migrate.c
# ksm_migrate_page, fork.c ksm_fork and ksm_exit, memory_hotplug.c the KSM memory notifier;
# ksm.c calls find_vma, handle_mm_fault, mmdrop and rmap.c's helpers. Here the callers
# import the ksm module object (`from . import ksm`, then `ksm.rmap_walk_ksm(...)`), ksm.py
# imports what it uses by name, and this package imports ksm once its constants exist, so
# the cycle resolves the same way whichever module is imported first.
from sim.mm import ksm  # noqa: E402,F401
