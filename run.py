#!/usr/bin/env python3
"""The `rmapsim` command, for a checkout without the console script: sim.launch."""
import sys; from sim.launch import main; sys.exit(main())  # noqa: E401,E702
