"""The report's plots as a reader sees them (issue 17), checked on the matplotlib figure
objects (axis scale, tick labels, limits, text boxes), not on pixels."""

import matplotlib
import pytest

from sim.sweep import make_sweep, run_sweep
from sim.sweep.report import figures, log_spaced, summarize

matplotlib.use("Agg")
MINI = "hotremove-exit-mini"


def _figs(tmp_path, grid, variants=None):
    d = tmp_path / "s"
    run_sweep(make_sweep(MINI, grid=grid, variants=variants, limits={"max_events": 3000}),
              d, backend="serial")
    return figures(summarize(d), d)


def _labels(ax):
    return [t.get_text() for t in ax.get_xticklabels()]


def test_a_string_axis_is_drawn_as_categories(tmp_path):
    """`sweep ... --grid migration=hotremove,numa; report`: the x axis became "cell", one
    dot per panel, ticks from -0.04 to 0.04."""
    ax = _figs(tmp_path, [("migration", ["hotremove", "numa"])])["rates.png"].axes[0]
    assert _labels(ax) == ["hotremove", "numa"] and ax.get_xlim() == (-0.5, 1.5)
    assert ax.get_xlabel() == "migration" and len(ax.lines[0].get_xdata()) == 2


def test_the_longest_numeric_axis_is_on_x_with_integer_ticks(tmp_path):
    """The first axis won even with 2 values when another had 5; integer axes showed 2.5
    and 3.5 CPUs."""
    figs = _figs(tmp_path, [("cpus", ["1", "2"]), ("processes", ["1", "2", "3", "4", "5"])])
    ax = figs["rates.png"].axes[0]
    assert figs["rates.png"].axes[-1].get_xlabel().startswith("processes")
    assert _labels(ax) == ["1", "2", "3", "4", "5"]
    assert all(float(t).is_integer() for t in ax.get_xticks())
    assert ax.get_xscale() == "linear"
    assert "cpus=1" in ax.get_title() and len(figs["rates.png"].axes) == 2   # a row per cpus


def test_a_log_range_is_drawn_on_a_log_scale(tmp_path):
    """A `scale = "log"` range was drawn on a linear axis."""
    rng = {"from": 1, "to": 8, "steps": 4, "scale": "log"}
    ax = _figs(tmp_path, [("reuser_delay_us", rng)])["rates.png"].axes[0]
    assert ax.get_xscale() == "log" and _labels(ax) == ["1", "2", "4", "8"]
    assert log_spaced([1, 2, 4, 8]) and not log_spaced([1, 2, 3, 4])


def test_all_zero_panels_have_a_sane_y_range(tmp_path):
    """All-zero panels showed ticks from -0.04 to 0.04."""
    fig = _figs(tmp_path, [("cpus", ["1", "2"])])["lock_wait.png"]
    ax = fig.axes[0]
    assert max(max(line.get_ydata()) for line in ax.lines) == 0
    assert ax.get_ylim() == (-0.05, 1)


def test_legend_title_and_plots_do_not_overlap_nor_leave_a_band(tmp_path):
    """The legend overlapped the title on narrow figures; a large blank band sat under the
    title."""
    figs = _figs(tmp_path, [("cpus", ["1", "2"])], variants=["v2.6.33", "no-rcu", "anon-vma-"
                                                             "refcount"])
    for name in ("rates.png", "lock_wait.png"):
        fig = figs[name]
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        title = fig._suptitle.get_window_extent(r)
        legend = fig.legends[0].get_window_extent(r)
        assert not title.overlaps(legend), name
        tops = max(ax.title.get_window_extent(r).y1 for ax in fig.axes)
        assert title.y0 - tops < 0.05 * fig.bbox.height, name      # no blank band
        for ax in fig.axes:
            assert not legend.overlaps(ax.get_window_extent(r)), name
