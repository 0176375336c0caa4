"""The simulator of chapter_hpo/hpo_sim.py: tables, seeds, rungs, statistics.

Most tests replay a small synthetic table written here, so they run
without the recorded curves; ``test_recorded_table*`` check the committed
tables themselves.
"""
import numpy as np
import pandas as pd
import pytest

import hpo_sim

N_CONFIGS, N_EPOCHS = 24, 9


def synthetic_table(n_configs=N_CONFIGS, n_epochs=N_EPOCHS, seed=0):
    """Curves that fall towards a per-configuration floor; config 1
    diverges at epoch 3. Times grow by a per-configuration epoch time."""
    rng = np.random.default_rng(seed)
    rows = []
    for config_id in range(n_configs):
        lr = float(np.exp(rng.uniform(np.log(1e-3), 0.0)))
        momentum = float(rng.uniform(0, 0.99))
        batch_size = int(rng.integers(16, 257))
        floor, speed = rng.uniform(0.1, 0.5), rng.uniform(0.3, 1.5)
        startup, per_epoch = rng.uniform(1.5, 2.5), rng.uniform(2, 6)
        last = 3 if config_id == 1 else n_epochs
        for epoch in range(1, last + 1):
            error = floor + (0.9 - floor) * np.exp(-speed * epoch)
            diverged = epoch == last < n_epochs
            cpu = startup + per_epoch * epoch
            rows.append(dict(
                config_id=config_id, learning_rate=lr, momentum=momentum,
                batch_size=batch_size, epoch=epoch,
                validation_error=1.0 if diverged else round(error, 4),
                elapsed_time=cpu + 0.01, cpu_time=cpu,
                startup_time=startup + 0.01, startup_cpu_time=startup,
                test_error=(1.0 if diverged else error + 0.01)
                if epoch == last else np.nan))
    return pd.DataFrame(rows)


def write_table(path, table):
    with open(path, 'w') as f:
        f.write('# synthetic curves for the tests\n')
        table.to_csv(f, index=False)
    return path


@pytest.fixture(scope='module')
def curves(tmp_path_factory):
    path = tmp_path_factory.mktemp('curves') / 'curves.csv'
    return hpo_sim.load_curves(write_table(path, synthetic_table()))


def test_load_curves_pads_diverged_curve_truthfully(curves):
    assert curves['config_id'].nunique() == N_CONFIGS
    assert (curves.groupby('config_id').size() == N_EPOCHS).all()
    curve = curves[curves['config_id'] == 1]
    assert curve['diverged'].all()
    padded = curve[curve['padded']]
    assert padded['epoch'].tolist() == list(range(4, N_EPOCHS + 1))
    assert (padded['validation_error'] == 1.0).all()
    at_divergence = curve.loc[curve['epoch'] == 3, 'cpu_time'].item()
    assert (padded['cpu_time'] == at_divergence).all()
    assert not curves.loc[curves['config_id'] != 1, 'padded'].any()


@pytest.mark.parametrize('change, message', [
    (lambda t: t.drop(columns='cpu_time'), 'missing column'),
    (lambda t: t[~((t.config_id == 5) & (t.epoch == 4))], 'are not 1, 2'),
    (lambda t: t[~((t.config_id == 5) & (t.epoch > 6))], 'not a divergence'),
    (lambda t: pd.concat([t, t[(t.config_id == 5) & (t.epoch == 2)]]),
     'are not 1, 2'),
    (lambda t: t.assign(momentum=np.where(
        (t.config_id == 5) & (t.epoch == 2), 0.5, t.momentum)),
     'momentum changes'),
    (lambda t: t.assign(cpu_time=np.where(
        (t.config_id == 5) & (t.epoch == 3), 0.5, t.cpu_time)),
     'cpu_time decreases'),
    (lambda t: t.assign(validation_error=t.validation_error + 1),
     r'validation_error must lie in \[0, 1\]'),
])
def test_load_curves_rejects_malformed_tables(tmp_path, change, message):
    path = write_table(tmp_path / 'bad.csv', change(synthetic_table()))
    with pytest.raises(ValueError, match=message):
        hpo_sim.load_curves(path)


def test_blackbox_returns_the_recorded_values(curves):
    blackbox = hpo_sim.make_blackbox(curves)
    row = curves[(curves.config_id == 7) & (curves.epoch == 5)].iloc[0]
    value = blackbox.objective_function({'config_id': 7},
                                        fidelity={'epoch': 5})
    assert value['validation_error'] == pytest.approx(row.validation_error)
    assert value['cpu_time'] == pytest.approx(row.cpu_time)
    with pytest.raises(ValueError, match='config_id'):
        blackbox.objective_function({'config_id': N_CONFIGS})


def test_cut_and_with_startup(curves):
    short = hpo_sim.cut(curves, 3)
    assert short['epoch'].max() == 3
    assert len(short) == 3 * N_CONFIGS
    shifted = hpo_sim.with_startup(curves, 10.0)
    # every epoch after the start-up costs what it cost before
    epoch_cost = curves['cpu_time'] - curves['startup_cpu_time']
    assert np.allclose(shifted['cpu_time'] - 10.0, epoch_cost)
    free = hpo_sim.with_startup(curves, 0.0)
    first = free[free['epoch'] == 1]
    assert (first['cpu_time'] > 0).all()


@pytest.mark.parametrize('method', hpo_sim.METHODS)
def test_same_seed_same_run_other_seed_other_run(curves, method):
    kwargs = dict(curves=curves, max_wallclock_time=200)
    first = hpo_sim.simulate(method, seed=3, **kwargs)
    again = hpo_sim.simulate(method, seed=3, **kwargs)
    other = hpo_sim.simulate(method, seed=4, **kwargs)
    pd.testing.assert_frame_equal(first.results, again.results)
    pd.testing.assert_frame_equal(first.trials, again.trials)
    assert first.trials['config_id'].tolist() != \
        other.trials['config_id'].tolist()
    assert len(first.results) > 10
    assert first.results['time'].max() <= 200
    assert first.results['time'].is_monotonic_increasing
    assert first.results['best'].is_monotonic_decreasing


def test_methods_are_paired_by_seed(curves):
    """The same seed makes every method try the same configurations in
    the same order; they differ only in how long they train them."""
    orders = {}
    for method in hpo_sim.METHODS:
        trials = hpo_sim.simulate(method, 5, curves=curves,
                                  max_wallclock_time=150).trials
        orders[method] = trials.sort_values('start')['config_id'].tolist()
    n = min(len(o) for o in orders.values())
    assert n >= 4
    first = orders['random search'][:n]
    assert all(o[:n] == first for o in orders.values())


# expected stopping epochs, written out rather than computed
@pytest.mark.parametrize('method, grace_period, reduction_factor, rungs', [
    ('ASHA', 1, 2, {1, 2, 4, 8}), ('ASHA', 2, 2, {2, 4, 8}),
    ('ASHA', 1, 3, {1, 3}), ('Hyperband', 1, 3, {1, 3}),
])
def test_trials_stop_only_at_rung_levels(curves, method, grace_period,
                                         reduction_factor, rungs):
    assert set(hpo_sim.rung_levels_formula(
        grace_period, reduction_factor, N_EPOCHS)) == rungs
    early = []
    for seed in range(3):
        trials = hpo_sim.simulate(
            method, seed, curves=curves, grace_period=grace_period,
            reduction_factor=reduction_factor,
            max_wallclock_time=400).trials
        ended = trials[trials['status'] == 'stopped']
        early += ended['epochs'].tolist()
        assert (trials.loc[trials['status'] == 'completed', 'epochs']
                == N_EPOCHS).all()
    assert early, 'no trial was stopped early; the test proves nothing'
    assert set(early) <= rungs


def test_random_search_runs_every_trial_to_the_end(curves):
    trials = hpo_sim.simulate('random search', 0, curves=curves,
                              max_wallclock_time=300).trials
    assert set(trials['status']) <= {'completed', 'diverged', 'cut off'}
    assert (trials['status'] == 'cut off').sum() <= 2  # one per worker


def test_synchronous_scheduling_starts_trials_in_rounds(curves):
    n_workers = 3
    trials = hpo_sim.simulate('ASHA in rounds', 0, n_workers=n_workers,
                              curves=curves, max_wallclock_time=300).trials
    rounds = trials.groupby('start')
    assert (rounds.size().iloc[:-1] == n_workers).all()
    ends = rounds['end'].max().to_numpy()
    starts = np.array(list(rounds.groups))
    assert (starts[1:] >= ends[:-1]).all()  # wait for the whole round


def toy_runs():
    """Three seeds of two methods, with times written out by hand."""
    return pd.DataFrame(dict(
        method=['a'] * 5 + ['b'] * 4, seed=[0, 0, 1, 1, 2, 0, 1, 2, 2],
        time=[1.0, 3.0, 2.0, 4.0, 5.0, 2.0, 1.0, 1.0, 6.0],
        validation_error=[0.5, 0.2, 0.4, 0.3, 0.1, 0.35, 0.3, 0.5, 0.2],
        n_trials=[2, 2, 2, 2, 1, 1, 1, 2, 2]))


def test_quantiles_and_time_to_reach():
    runs = toy_runs()
    q = hpo_sim.best_so_far_quantiles(runs[runs.method == 'a'],
                                      [0.5, 4.5, 6.0])
    assert q['median'].isna().tolist() == [True, True, False]
    assert q['median'].iloc[2] == pytest.approx(0.2)
    reach = hpo_sim.time_to_reach(runs, 0.3)
    assert reach.loc['a'].tolist() == [3.0, 4.0, 5.0]
    assert reach.loc['b'].tolist() == [np.inf, 1.0, 6.0]
    assert np.isinf(hpo_sim.time_to_reach(runs, 0.05)).all()


def test_compare_is_paired_by_seed():
    table = hpo_sim.compare(toy_runs(), 0.3, reference='a')
    b = table.loc['b']
    # seed 0: a 3.0, b never; seed 1: a 4.0, b 1.0; seed 2: a 5.0, b 6.0
    assert b['first'] == 1 and b['seeds'] == 3
    assert b['median_time'] == 6.0
    assert b['ratio'] == pytest.approx(6.0 / 4.0)
    assert b['ratio_low'] <= b['ratio'] <= b['ratio_high']
    assert b['reached'] == pytest.approx(2 / 3)
    assert table.loc['a', 'ratio'] == 1.0


def test_bootstrap_interval_covers_and_repeats():
    values = np.random.default_rng(0).normal(10, 1, size=200)
    low, high = hpo_sim.bootstrap_interval(values, np.median)
    assert low < np.median(values) < high
    assert high - low < 0.6  # about 4 standard errors of the median
    assert (low, high) == hpo_sim.bootstrap_interval(values, np.median)


def test_speedup_of_random_search(curves):
    table = hpo_sim.speedup(curves, n_workers_list=(1, 2, 4),
                            seeds=range(6), max_wallclock_time=2000)
    assert table.index.tolist() == [1, 2, 4]
    assert table.loc[1, 'speedup'] == 1.0
    assert 1.0 < table.loc[2, 'speedup'] < table.loc[4, 'speedup'] <= 4.5
    assert (table['low'] <= table['speedup']).all()
    assert (table['speedup'] <= table['high']).all()


def test_where_run_fell():
    sims = pd.DataFrame(dict(seed=[0, 1, 2, 3], time=[5.0] * 4,
                             validation_error=[0.1, 0.2, 0.3, 0.4]))
    place = hpo_sim.where_run_fell([1.0, 4.0, 20.0], [0.5, 0.25, 0.05],
                                   sims, horizon=10)
    assert place['best'] == 0.25 and place['last_improvement'] == 4.0
    assert place['worse'] == 0.5 and place['seeds'] == 4
    text = hpo_sim.describe_run(place, 10)
    assert '0.2500' in text and '50% of 4' in text and 'typical' in text


def test_plot_quantiles(curves):
    import matplotlib
    matplotlib.use('Agg')
    runs = hpo_sim.run_many(['random search', 'ASHA'], seeds=range(3),
                            curves=curves, max_wallclock_time=120)
    assert set(runs['method']) == {'random search', 'ASHA'}
    assert (runs.groupby(['method', 'seed'])['n_trials'].nunique()
            == 1).all()
    q = hpo_sim.best_so_far_quantiles(runs, np.linspace(0, 120, 50))
    ax = hpo_sim.plot_quantiles(q, ['ASHA'], target=0.3)
    assert ax.get_lines()[0].get_label().startswith('ASHA')
    matplotlib.pyplot.close(ax.figure)


@pytest.mark.parametrize('path, epochs, at_least', [
    (hpo_sim.CURVES, 27, 200), (hpo_sim.TEST_CURVES, 9, 50)])
def test_recorded_table(path, epochs, at_least):
    """The committed tables: complete curves, values in range, from the
    search space, with the set-up they were recorded with."""
    import hpo_utils
    budget = 'full' if epochs == 27 else 'test'
    setup = hpo_utils.choose_setup(budget, n_gpus=0)
    assert hpo_sim.curves_for(setup) == path
    assert hpo_sim.table_setup(path) == dict(setup.constants,
                                             threads_per_trial=1)
    curves = hpo_sim.load_curves(path)  # checks epochs 1..last
    last = curves.groupby('config_id').last()
    assert len(last) >= at_least
    assert sorted(last.index) == list(range(len(last)))
    assert curves['epoch'].max() == epochs
    assert (curves.groupby('config_id').size() == epochs).all()
    real = curves[~curves['padded']]
    assert real['validation_error'].between(0, 1).all()
    assert last.loc[~last['diverged'], 'test_error'].between(0, 1).all()
    assert (real['elapsed_time'] >= real['cpu_time'] * 0.8).all()
    assert (real['startup_cpu_time'] < real['cpu_time']).all()
    for name, domain in hpo_utils.search_space().items():
        outside = last[~last[name].map(domain.is_valid)]
        assert outside.empty, f'{name} outside {domain}: {outside}'
    header = [line for line in path.read_text().splitlines()
              if line.startswith('#')]
    assert any('torch' in line and 'syne-tune' in line for line in header)
    assert any(line.startswith('# seed:') for line in header)


def test_runs_are_the_same_in_parallel_and_in_any_order(curves):
    kwargs = dict(curves=curves, max_wallclock_time=150)
    serial = hpo_sim.run_many(['Hyperband', 'ASHA'], [0, 1, 2],
                              processes=1, **kwargs)
    parallel = hpo_sim.run_many(['Hyperband', 'ASHA'], [2, 1, 0],
                                processes=2, **kwargs)
    key = ['method', 'seed', 'time', 'trial_id', 'epoch']
    pd.testing.assert_frame_equal(
        serial.sort_values(key, kind='stable').reset_index(drop=True),
        parallel.sort_values(key, kind='stable').reset_index(drop=True))


def test_stopping_at_a_target_keeps_the_time_to_reach_it(curves):
    target = hpo_sim.default_target(curves, quantile=0.3)
    full = hpo_sim.run_many(['random search', 'ASHA'], range(4), curves,
                            max_wallclock_time=300)
    short = hpo_sim.run_many(['random search', 'ASHA'], range(4), curves,
                             max_wallclock_time=300, stop_below=target)
    assert len(short) < len(full)
    pd.testing.assert_series_equal(hpo_sim.time_to_reach(full, target),
                                   hpo_sim.time_to_reach(short, target))


def test_cached_recomputes_only_when_something_changed(curves, tmp_path):
    calls = []

    def compute(curves, factor):
        calls.append(factor)
        return pd.DataFrame({'k': [1, 2], 'value': [factor, 2 * factor]}
                            ).set_index('k')

    path = tmp_path / 'cache.csv'
    first = hpo_sim.cached(path, compute, curves=curves, factor=1.5)
    again = hpo_sim.cached(path, compute, curves=curves, factor=1.5)
    assert calls == [1.5]
    pd.testing.assert_frame_equal(first, again)
    assert first.index.name == 'k' and first.loc[2, 'value'] == 3.0
    hpo_sim.cached(path, compute, curves=curves, factor=2.0)
    assert calls == [1.5, 2.0]
