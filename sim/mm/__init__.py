"""The modelled kernel paths: one module per kernel source file, functions named like the
kernel's, each taking its locks in the kernel's order. Generator functions can wait: call them
with `yield from`. Return codes are the kernel's (negative errno, SWAP_*)."""

SWAP_SUCCESS = 0
SWAP_AGAIN = 1
SWAP_FAIL = 2

EAGAIN = -11
ENOMEM = -12
EFAULT = -14
EBUSY = -16

TTU_MIGRATION = 1


class Oops(Exception):
    """A kernel BUG() hit by a task: the task dies (do_exit from the oops path)."""
