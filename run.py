#!/usr/bin/env python3
"""The `rmapsim` command, for a checkout without the console script: sim.cli."""
import sys; from sim.cli import main; sys.exit(main())  # noqa: E401,E702
