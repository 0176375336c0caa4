"""Every figure of ``hpo.plots``, checked on the data it draws.

The data are real: a tiny ASHA experiment (real trials on Fashion-MNIST,
shrunk) and the simulator on the recorded test table. Each test reads
back what is on the axes: labels, lines, bars and their colours, the
legend, the ranges.
"""
import dataclasses

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba

import hpo.plots
import hpo.setups
import hpo.sim
import hpo.stats
import hpo.trials
import hpo.tuner

matplotlib.use('Agg')
TIME = 'wall-clock time (s)'


@pytest.fixture(autouse=True)
def fresh_figure():
    yield
    matplotlib.pyplot.close('all')


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    """ASHA on two workers, rungs at 1 and 2 of 3 epochs."""
    from syne_tune.optimizer.baselines import ASHA
    np.random.seed(0)
    space = dict(hpo.tuner.search_space(), max_epochs=3, model='lenet',
                 image_size=28, n_train=500)
    scheduler = ASHA(space, metric='validation_error', time_attr='epoch',
                     max_t=3, grace_period=1, reduction_factor=2,
                     do_minimize=True, random_seed=1)
    setup = dataclasses.replace(hpo.setups.choose_setup('test', n_gpus=0),
                                n_workers=2, threads_per_trial=1)
    exp = hpo.tuner.run_experiment(
        scheduler, 'train_script_report_eachepoch.py', 900, setup,
        tmp_path_factory.mktemp('exp'), max_num_trials_finished=6)
    return exp, hpo.trials.trial_table(exp)


@pytest.fixture(scope='module')
def curves():
    return hpo.sim.load_curves(hpo.sim.TEST_CURVES)


def legend(ax):
    """The legend's entries: label -> colour (RGBA)."""
    handles = ax.get_legend().legend_handles
    return {text.get_text(): to_rgba(_colour(handle)) for text, handle
            in zip(ax.get_legend().get_texts(), handles)}


def _colour(artist):
    return (artist.get_color() if hasattr(artist, 'get_color')
            and not hasattr(artist, 'get_facecolor')
            else artist.get_facecolor())


def expected_legend(trials):
    """The statuses in ``trials``, in the order of ``STATUSES``."""
    return {s: to_rgba(hpo.plots.STATUS_COLORS[s]) for s in
            hpo.trials.STATUSES if (trials['status'] == s).any()}


def bars(ax):
    """The bars of a Gantt chart or bar chart (legend dummies left out)."""
    return [p for p in ax.patches if p.get_width() > 0]


def test_best_so_far_is_the_running_minimum(experiment):
    exp, _ = experiment
    ax = hpo.plots.plot_best_so_far(exp)
    reports = hpo.trials.report_times(exp).sort_values('time')
    (line,) = ax.get_lines()
    assert np.allclose(line.get_xdata(), reports['time'])
    assert np.allclose(line.get_ydata(),
                       reports['validation_error'].cummin())
    assert (ax.get_xlabel(), ax.get_ylabel()) == (
        TIME, 'best validation error')


def test_learning_curves_one_per_trial_coloured_by_status(experiment):
    exp, trials = experiment
    assert {'completed', 'stopped'} <= set(trials['status'])
    ax = hpo.plots.plot_learning_curves(exp, trials)
    reported = set(hpo.trials.report_times(exp)['trial_id'])
    curves = [line for line in ax.get_lines()
              if line.get_linestyle() == '-' and len(line.get_xdata())]
    assert len(curves) == len(reported)
    assert {to_rgba(line.get_color()) for line in curves} == {
        to_rgba(hpo.plots.STATUS_COLORS[s])
        for s in trials.loc[sorted(reported), 'status']}
    assert legend(ax) == expected_legend(trials)
    assert (ax.get_xlabel(), ax.get_ylabel()) == (TIME, 'validation error')
    assert ax.get_ylim() == (0, 1.02)


def test_timeline_one_bar_per_trial_on_its_worker(experiment):
    _, trials = experiment
    workers = hpo.plots.plot_timeline(trials, 2)
    ax = matplotlib.pyplot.gca()
    assert list(workers) == list(hpo.trials.assign_workers(trials, 2))
    drawn = sorted((round(b.get_x(), 6), round(b.get_width(), 6),
                    to_rgba(b.get_facecolor())) for b in bars(ax))
    want = sorted((round(r.start, 6), round(r.end - r.start, 6),
                   to_rgba(hpo.plots.STATUS_COLORS[r.status]))
                  for r in trials.itertuples() if r.end > r.start)
    assert drawn == want
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        'worker 0', 'worker 1']
    assert legend(ax) == expected_legend(trials)
    assert ax.get_xlabel() == TIME


def test_nodes_one_row_per_node_head_first(experiment):
    _, trials = experiment
    workers = hpo.trials.assign_workers(trials, 2)
    on_nodes = trials.assign(node=workers.map({0: 'node-b', 1: 'head'}))
    ax = hpo.plots.plot_nodes(on_nodes)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        'head', 'node-b']
    assert len(bars(ax)) == (trials['end'] > trials['start']).sum()
    assert legend(ax) == expected_legend(trials)


def test_rung_occupancy_one_bar_per_rung(experiment):
    _, trials = experiment
    occupancy = hpo.trials.rung_occupancy(trials, [1, 2], 3)
    ax = hpo.plots.plot_rung_occupancy(occupancy)
    assert [b.get_height() for b in ax.patches] == list(occupancy)
    assert [t.get_text() for t in ax.get_xticklabels()] == ['1', '2', '3']
    assert [t.get_text() for t in ax.texts] == [str(n) for n in occupancy]
    assert ax.get_xlabel() == 'epochs (rung level)'


def test_schedules_one_chart_per_schedule(curves):
    sims = {m: hpo.sim.simulate(m, 0, curves, max_wallclock_time=120)
            for m in ('random search', 'ASHA')}
    schedules = {m: (s.trials['start'], s.trials['end'],
                     hpo.trials.assign_workers(s.trials, 2))
                 for m, s in sims.items()}
    hpo.plots.plot_schedules(schedules)
    axes = matplotlib.pyplot.gcf().axes
    assert [ax.get_title() for ax in axes] == list(schedules)
    for ax, sim in zip(axes, sims.values()):
        assert len(bars(ax)) == (sim.trials['end'] > sim.trials['start']
                                 ).sum()
    assert axes[-1].get_xlabel() == TIME


@pytest.fixture(scope='module')
def runs(curves):
    return hpo.sim.run_many(['random search', 'ASHA'], range(4), curves,
                            processes=1, max_wallclock_time=200)


def test_ecdf_one_step_line_per_method(runs):
    target = hpo.stats.target_error(runs, 200)
    times = hpo.stats.times_to_target(runs, target)
    ax = hpo.plots.plot_ecdf(times, 200)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ['random search', 'ASHA']
    for line in lines:
        t = times[line.get_label()]
        assert line.get_ydata()[-1] == pytest.approx((t <= 200).mean())
        assert line.get_xdata()[-1] == 200
    assert ax.get_xlim() == (0, 200)
    assert ax.get_ylabel() == 'share of runs at the target'


def test_run_over_band_median_quartiles_and_the_run(experiment, runs):
    exp, _ = experiment
    reports = hpo.trials.report_times(exp)
    sims = runs[runs['method'] == 'random search']
    ax = hpo.plots.plot_run_over_band(reports, sims, 200)
    assert [line.get_label() for line in ax.get_lines()] == [
        'simulated: median at each time', 'this run']
    assert len(ax.collections) == 1  # the quartiles' band
    real = ax.get_lines()[-1].get_ydata()
    grid = np.linspace(0, 200, 400)
    assert np.allclose(real, hpo.stats.best_at(reports, grid),
                       equal_nan=True)
    assert ax.get_xlim() == (0, 200)
    matplotlib.pyplot.close('all')
    alone = hpo.plots.plot_run_over_band(reports, None, 200, label='run')
    assert [line.get_label() for line in alone.get_lines()] == ['run']


def test_saving_one_line_per_epoch_budget(curves):
    saving = hpo.sim.saving_sweep(curves, startups=[0.0, 5.0],
                                  epoch_budgets=[3, 9], seeds=range(3),
                                  max_wallclock_time=100, processes=1)
    ax = hpo.plots.plot_saving(saving)
    labels = [c.get_label() for c in ax.containers]
    assert labels == ['r_max = 3 epochs', 'r_max = 9 epochs']
    for container, (_, rows) in zip(ax.containers,
                                    saving.groupby('epochs')):
        line = container.lines[0]
        assert list(line.get_xdata()) == list(rows['startup'])
        assert np.allclose(line.get_ydata(), rows['ratio'])
    assert ax.get_ylabel() == 'ASHA time / random search time'
