"""The engine layer: the simulated machine every scenario runs on, and nothing of mm.

The Kernel (a SimPy environment with one seeded RNG, choice points, CPUs, RCU and the locks
of 2.6.33), the tracer, the scheduling strategies (sched/), and the validators that know
only about locks and tasks (lockdep, the deadlock detector). Validators and oracles report
through the hook bus (violations.Report); the engine imports nothing from sim.mm.
"""
