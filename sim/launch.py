"""The `rmapsim` command's entry point, and run.py's: Ctrl-C while the simulator loads.

Imports nothing of the simulator until main() runs (sim/__init__ is lazy too), so that a
Ctrl-C while the simulator loads (a few hundred ms: numpy, SimPy, the model) exits as one
later does, with one line and code 130 rather than a traceback.
"""

from __future__ import annotations

import os
import sys


def program() -> str:
    """The name the command was called by, for its messages: rmapsim or run.py."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "rmapsim"
    return prog if prog in ("run.py", "rmapsim") else "rmapsim"


def main() -> int:
    try:
        from sim.cli import main as cli_main
    except KeyboardInterrupt:
        print(f"{program()}: interrupted", file=sys.stderr)
        return 130
    return cli_main()
