"""Choice points: seeded tie order, controlled strategies, exact replay from recorded choices."""

import json

import pytest

import sim
from sim.sched import RandomWalk, Replay, ReplayDivergence
from conftest import make_kernel


def test_simultaneous_events_are_ordered_by_the_seed_not_fifo():
    orders = set()
    for seed in range(12):
        k = make_kernel(seed=seed)
        seen = []
        for i in range(5):
            def body(k, t, i=i):
                yield from k.sleep(t, 10)     # all five wake at the same instant
                seen.append(i)
            k.spawn(f"t{i}", body)
        k.run()
        orders.add(tuple(seen))
        k2 = make_kernel(seed=seed)
        again = []
        for i in range(5):
            def body2(k, t, i=i):
                yield from k.sleep(t, 10)
                again.append(i)
            k2.spawn(f"t{i}", body2)
        k2.run()
        assert again == seen                   # same seed, same order
    assert len(orders) > 3                     # different seeds, different orders


def test_controlled_random_walk_replays_exactly():
    strat = RandomWalk()
    a = sim.simulate("lock-calibration", seed=5, acquisitions=300, strategy=strat)
    choices = a.schedule["choices"]
    assert a.schedule["strategy"] == "random" and len(choices) > 300
    assert any(c != 0 for c in choices)
    b = sim.simulate("lock-calibration", seed=5, acquisitions=300, strategy=Replay(choices))
    assert json.dumps(b.lock_stat) == json.dumps(a.lock_stat)
    assert b.schedule["choices"] == choices
    # a different schedule is a different run: change one real choice (an index that was
    # not 0, so at least two tasks were waiting) to 0, which is valid there too
    i = next(n for n, x in enumerate(choices) if x != 0)
    changed = choices[:i] + [0] + choices[i + 1:]
    try:
        c = sim.simulate("lock-calibration", seed=5, acquisitions=300,
                         strategy=Replay(changed))
    except ReplayDivergence as e:            # the later choices no longer fit: past i
        assert int(str(e).split()[1]) > i, e
    else:
        assert json.dumps(c.lock_stat) != json.dumps(a.lock_stat)


def test_controlled_mode_drives_the_mm_model_and_replays_it():
    a = sim.simulate("hotremove-exit", seed=3, duration_ms=5, strategy=RandomWalk())
    assert a.counters["migrations"] > 0 and len(a.schedule["choices"]) > 1000
    b = sim.simulate("hotremove-exit", seed=3, duration_ms=5,
                     strategy=Replay(a.schedule["choices"]))
    assert json.dumps(b.to_dict()) == json.dumps(
        {**a.to_dict(), "schedule": {"strategy": "replay", "choices": a.schedule["choices"]}})
