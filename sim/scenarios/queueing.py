"""Queueing-theory references for the lock-calibration workload.

- One exclusive lock, N sources each thinking Exp(mean think) and holding Exp(mean hold):
  the finite-source M/M/1//N queue (machine-repairman model), in closed form.
- An rw_semaphore with R readers and W writers, same exponential times, with the kernel's
  semantics (FIFO queue; a queued writer blocks new readers; release grants one writer or all
  leading readers): a small continuous-time Markov chain, solved exactly.
Both give the mean wait over all acquisitions (zero for those that did not wait), which is what
the simulator's batch-means estimate measures.
"""

from __future__ import annotations

from collections import deque
from math import exp, lgamma, log

import numpy as np


def finite_source_mm1(n: int, think: float, hold: float) -> dict[str, float]:
    """M/M/1//N: p_k = p0 * N!/(N-k)! * (lambda/mu)^k; wait W = L/X - 1/mu.

    The terms are summed in log space (log-sum-exp): N!/(N-k)! overflows a float from
    N = 171, and the documented range of cpus goes to 512."""
    lam, mu = 1.0 / think, 1.0 / hold
    logr = log(lam / mu)
    logs = [lgamma(n + 1) - lgamma(n - k + 1) + k * logr for k in range(n + 1)]
    top = max(logs)
    scaled = [exp(x - top) for x in logs]
    total = sum(scaled)
    probs = [x / total for x in scaled]
    p0 = probs[0]
    busy = 1.0 - p0
    in_system = sum(k * p for k, p in enumerate(probs))
    throughput = mu * busy
    response = in_system / throughput
    return {"wait": response - hold, "response": response, "throughput": throughput,
            "utilization": busy, "queue_len": in_system - busy}


State = tuple[int, bool, tuple[bool, ...]]   # (active readers, writer active, queue: True=W)


def rwsem_ctmc(readers: int, writers: int, think: float, hold: float,
               writer_fairness: bool = True) -> dict[str, float]:
    """Exact mean waits of readers and writers on a 2.6.33 rw_semaphore (see module doc).

    writer_fairness=False gives a reader-preferring lock instead (readers join active readers
    past queued writers; a releasing writer admits every queued reader), the counterfactual
    the tests use to show the calibration can tell the two apart.
    """
    lam, mu = 1.0 / think, 1.0 / hold

    def grant(q: tuple[bool, ...]) -> State:
        if not writer_fairness and not all(q):
            nr = sum(1 for x in q if not x)
            return (nr, False, tuple(x for x in q if x))
        if q[0]:
            return (0, True, q[1:])
        i = 0
        while i < len(q) and not q[i]:
            i += 1
        return (i, False, q[i:])

    def moves(s: State) -> list[tuple[State, float]]:
        ra, wa, q = s
        qr = sum(1 for x in q if not x)
        qw = len(q) - qr
        out: list[tuple[State, float]] = []
        tr = readers - ra - qr
        tw = writers - (1 if wa else 0) - qw
        if tr:
            free = not wa and (not q or (not writer_fairness and ra > 0))
            nxt = (ra + 1, wa, q) if free else (ra, wa, q + (False,))
            out.append((nxt, tr * lam))
        if tw:
            nxt = (0, True, q) if not wa and ra == 0 and not q else (ra, wa, q + (True,))
            out.append((nxt, tw * lam))
        if ra:
            if ra == 1 and q:
                out.append((grant(q), mu))
            else:
                out.append(((ra - 1, wa, q), ra * mu))
        if wa:
            out.append((grant(q) if q else (0, False, ()), mu))
        return out

    start: State = (0, False, ())
    index = {start: 0}
    order = [start]
    todo = deque([start])
    edges: list[tuple[int, int, float]] = []
    while todo:
        s = todo.popleft()
        for t, rate in moves(s):
            if t not in index:
                index[t] = len(order)
                order.append(t)
                todo.append(t)
            edges.append((index[s], index[t], rate))
    n = len(order)
    Q = np.zeros((n, n))
    for i, j, rate in edges:
        Q[i, j] += rate
        Q[i, i] -= rate
    A = np.vstack([Q.T, np.ones(n)])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    pi = np.linalg.lstsq(A, b, rcond=None)[0]
    qr = np.array([sum(1 for x in s[2] if not x) for s in order], dtype=float)
    qw = np.array([sum(1 for x in s[2] if x) for s in order], dtype=float)
    tr = np.array([readers - s[0] - sum(1 for x in s[2] if not x) for s in order], dtype=float)
    tw = np.array([writers - (1 if s[1] else 0) - sum(1 for x in s[2] if x) for s in order],
                  dtype=float)
    x_r = float(pi @ tr) * lam
    x_w = float(pi @ tw) * lam
    return {
        "read_wait": float(pi @ qr) / x_r if readers else 0.0,
        "write_wait": float(pi @ qw) / x_w if writers else 0.0,
        "read_throughput": x_r, "write_throughput": x_w, "states": float(n),
    }
