"""Errors in what the user asked for (as opposed to bugs in the simulator)."""


class InputError(ValueError):
    """Bad input: the message is one line naming what is wrong and what is valid."""
