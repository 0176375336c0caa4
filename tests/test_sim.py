"""The simulator of hpo/sim.py: tables, seeds, rungs, statistics.

Most tests replay a small synthetic table written here, so they run
without the recorded curves; ``test_recorded_table*`` check the committed
tables themselves.
"""
import dataclasses

import numpy as np
import pandas as pd
import pytest

import hpo.plots
import hpo.sim
import hpo.stats

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
    return hpo.sim.load_curves(write_table(path, synthetic_table()))


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
        hpo.sim.load_curves(path)


def test_blackbox_returns_the_recorded_values(curves):
    blackbox = hpo.sim.make_blackbox(curves)
    row = curves[(curves.config_id == 7) & (curves.epoch == 5)].iloc[0]
    value = blackbox.objective_function({'config_id': 7},
                                        fidelity={'epoch': 5})
    assert value['validation_error'] == pytest.approx(row.validation_error)
    assert value['cpu_time'] == pytest.approx(row.cpu_time)
    with pytest.raises(ValueError, match='config_id'):
        blackbox.objective_function({'config_id': N_CONFIGS})


def test_cut_and_with_startup(curves):
    short = hpo.sim.cut(curves, 3)
    assert short['epoch'].max() == 3
    assert len(short) == 3 * N_CONFIGS
    shifted = hpo.sim.with_startup(curves, 10.0)
    # every epoch after the start-up costs what it cost before
    epoch_cost = curves['cpu_time'] - curves['startup_cpu_time']
    assert np.allclose(shifted['cpu_time'] - 10.0, epoch_cost)
    free = hpo.sim.with_startup(curves, 0.0)
    first = free[free['epoch'] == 1]
    assert (first['cpu_time'] > 0).all()


@pytest.mark.parametrize('method', hpo.sim.METHODS)
def test_same_seed_same_run_other_seed_other_run(curves, method):
    kwargs = dict(curves=curves, max_wallclock_time=200)
    first = hpo.sim.simulate(method, seed=3, **kwargs)
    again = hpo.sim.simulate(method, seed=3, **kwargs)
    other = hpo.sim.simulate(method, seed=4, **kwargs)
    pd.testing.assert_frame_equal(first.results, again.results)
    pd.testing.assert_frame_equal(first.trials, again.trials)
    assert first.trials['config_id'].tolist() != \
        other.trials['config_id'].tolist()
    assert len(first.results) > 5
    assert first.results['time'].max() <= 200
    assert first.results['time'].is_monotonic_increasing
    assert first.results['best'].dropna().is_monotonic_decreasing


def test_methods_are_paired_by_seed(curves):
    """The same seed makes every method try the same configurations in
    the same order; they differ only in how long they train them."""
    orders = {}
    for method in hpo.sim.METHODS:
        trials = hpo.sim.simulate(method, 5, curves=curves,
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
    ('synchronous SH', 1, 3, {1, 3}),
])
def test_trials_stop_only_at_rung_levels(curves, method, grace_period,
                                         reduction_factor, rungs):
    assert set(hpo.sim.rung_levels_formula(
        grace_period, reduction_factor, N_EPOCHS)) == rungs
    early = []
    for seed in range(3):
        trials = hpo.sim.simulate(
            method, seed, curves=curves, grace_period=grace_period,
            reduction_factor=reduction_factor,
            max_wallclock_time=400).trials
        ended = trials[trials['status'] == 'stopped']
        early += ended['epochs'].tolist()
        assert (trials.loc[trials['status'] == 'completed', 'epochs']
                == N_EPOCHS).all()
    assert early, 'no trial was stopped early; the test proves nothing'
    assert set(early) <= rungs


@pytest.mark.parametrize('method, seed', [
    ('random search', 0), ('ASHA', 5), ('Hyperband', 2),
    ('synchronous SH', 5)])
def test_a_trial_that_reached_its_divergence_diverged(curves, method, seed):
    """Configuration 1 diverges at epoch 3: a trial of it that got there
    (or past it, on padded epochs) diverged, one stopped before did not;
    hpo.trials.ended_as decides, so every status is one of STATUSES."""
    import hpo.trials
    trials = hpo.sim.simulate(method, seed, curves=curves,
                              max_wallclock_time=400).trials
    assert set(trials['status']) <= set(hpo.trials.STATUSES)
    ones = trials[trials['config_id'] == 1]
    assert (ones['epochs'] >= 3).any(), 'the test proves nothing'
    assert ((ones['status'] == 'diverged') == (ones['epochs'] >= 3)).all()
    others = trials[trials['config_id'] != 1]
    assert (others['status'] != 'diverged').all()


def test_random_search_runs_every_trial_to_the_end(curves):
    trials = hpo.sim.simulate('random search', 0, curves=curves,
                              max_wallclock_time=300).trials
    assert set(trials['status']) <= {'completed', 'diverged', 'cut off'}
    assert (trials['status'] == 'cut off').sum() <= 2  # one per worker


def test_random_search_reports_once_at_the_end(curves):
    """As train_script.py: one report per trial, at its last epoch (3 for
    the diverging configuration 1); a trial cut off reports nothing."""
    sim = hpo.sim.simulate('random search', 1, curves=curves,
                           max_wallclock_time=400)
    results = sim.results.set_index('trial_id')
    assert results.index.is_unique and len(results) >= 8
    expected = np.where(results['config_id'] == 1, 3, N_EPOCHS)
    assert (results['epoch'] == expected).all()
    assert results['final'].tolist() == (expected == N_EPOCHS).tolist()
    cut_off = sim.trials[sim.trials['status'] == 'cut off'].index
    assert not results.index.isin(cut_off).any()
    asha = hpo.sim.simulate('ASHA', 1, curves=curves, max_wallclock_time=400)
    assert not asha.results['trial_id'].is_unique  # reports every epoch


@pytest.mark.parametrize('factor', [1.0, 2.5])
def test_clock_follows_the_recorded_time_column(curves, factor):
    """Each report comes its recorded (scaled) seconds after its trial's
    start, for every method."""
    scaled = hpo.sim.scaled(curves, factor)
    recorded = curves.set_index(['config_id', 'epoch'])['cpu_time']
    for method in hpo.sim.METHODS:
        sim = hpo.sim.simulate(method, 2, curves=scaled,
                               max_wallclock_time=300)
        r = sim.results.join(sim.trials['start'], on='trial_id')
        r = r[(r['config_id'] != 1) | (r['epoch'] <= 3)]  # not padded
        if method == 'synchronous SH':  # every job pays the start-up
            r = r[r['epoch'] <= 1]
        after = (r['time'] - r['start']).to_numpy()
        want = factor * recorded.loc[list(zip(r['config_id'],
                                              r['epoch']))].to_numpy()
        # Syne Tune's simulator delivers a report 0.05 s after it is made
        assert np.allclose(after, want, atol=0.051), method


def test_speed_factor_recovers_a_scaled_clock():
    """A run on the recorded curves scaled by 0.63 measures about 0.63."""
    curves = hpo.sim.load_curves(hpo.sim.CURVES)
    for method in ('random search', 'ASHA'):
        sim = hpo.sim.simulate(method, 0, hpo.sim.scaled(curves, 0.63),
                               max_wallclock_time=480)
        factor = hpo.sim.speed_factor(sim.results, sim.trials, curves)
        assert factor == pytest.approx(0.63, rel=0.03), method
    with pytest.raises(ValueError, match='no reports'):
        hpo.sim.speed_factor(sim.results[:0], sim.trials, curves)


def test_synchronous_sh_waits_at_every_barrier(curves):
    """Strict barriers: no job of a rung starts before every job of the
    rung below has ended; each rung keeps the best 1/eta of the one
    below; a bracket ends before the next begins."""
    sim = hpo.sim.simulate('synchronous SH', 0, curves=curves, n_workers=3,
                           max_wallclock_time=2000)
    jobs, results = sim.jobs, sim.results
    error = results.set_index(['trial_id', 'epoch'])['validation_error']
    jobs = jobs.assign(bracket=jobs['trial_id'] // 9)  # 3 ** 2 each
    for _, bracket in jobs.groupby('bracket'):
        if bracket['to_epoch'].max() < N_EPOCHS:
            continue  # the last bracket, cut by the budget
        rungs = [g for _, g in bracket.groupby('to_epoch')]
        assert [len(g) for g in rungs] == [9, 3, 1][:len(rungs)]
        for below, above in zip(rungs, rungs[1:]):
            assert above['start'].min() >= below['end'].max()
            at = error.loc[list(zip(below['trial_id'], below['to_epoch']))]
            best = set(at.nsmallest(len(above), keep='first')
                       .index.get_level_values(0))
            assert set(above['trial_id']) == best
    ends = jobs.groupby('bracket')['end'].max()
    starts = jobs.groupby('bracket')['start'].min()
    assert (starts.to_numpy()[1:] >= ends.to_numpy()[:-1]).all()
    assert jobs['bracket'].nunique() >= 3


def test_speedup_of_random_search(curves):
    table = hpo.sim.speedup(curves, n_workers_list=(1, 2, 4),
                            seeds=range(6), max_wallclock_time=2000)
    assert table.index.tolist() == [1, 2, 4]
    assert table.loc[1, 'speedup'] == 1.0
    assert 1.0 < table.loc[2, 'speedup'] < table.loc[4, 'speedup'] <= 4.5
    assert (table['low'] <= table['speedup']).all()
    assert (table['speedup'] <= table['high']).all()
    assert table['reached'].between(0, 1).all()


def test_plots_draw_their_data(curves):
    import matplotlib
    matplotlib.use('Agg')
    runs = hpo.sim.run_many(['random search', 'ASHA'], seeds=range(4),
                            curves=curves, max_wallclock_time=300)
    times = hpo.stats.times_to_target(runs, 0.35)
    ax = hpo.plots.plot_ecdf(times, 300)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {'random search', 'ASHA'}
    for method, line in lines.items():
        reached = np.isfinite(times[method]).mean()
        assert line.get_ydata()[-1] == pytest.approx(reached)
        assert line.get_xdata()[-1] == 300
    matplotlib.pyplot.close(ax.figure)
    sims = runs[runs['method'] == 'ASHA']
    real = sims[sims['seed'] == 0]
    ax = hpo.plots.plot_run_over_band(real, sims, 300)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ['simulated: median at each time', 'this run']
    best = ax.get_lines()[1].get_ydata()
    assert np.nanmin(best) == real.loc[real['final'],
                                       'validation_error'].min()
    matplotlib.pyplot.close(ax.figure)


def test_synchronous_sh_idle_time_by_hand():
    """27 configurations, eta 3, epochs of 1 s and no start-up on 4
    workers: rungs of 27, 9, 3 and 1 jobs of 1, 2, 6 and 18 s take 7, 6,
    6 and 18 s; the workers are busy 27 + 18 + 18 + 18 of 4 * 37 s."""
    elapsed = np.tile(np.arange(28.0), (27, 1))
    errors = np.tile(np.linspace(0.1, 0.9, 27)[:, None], (1, 28))
    jobs = hpo.sim.synchronous_sh(elapsed, errors, n_workers=4, poll=1.0)
    jobs = pd.DataFrame(jobs, columns=['i', 'first', 'last', 'worker',
                                       'start', 'end'])
    assert jobs['end'].max() == 37
    assert (jobs['end'] - jobs['start']).sum() == 27 + 18 + 18 + 18
    assert jobs.loc[jobs['last'] == 27, 'i'].tolist() == [0]


@pytest.mark.parametrize('path, epochs, at_least', [
    (hpo.sim.CURVES, 27, 200), (hpo.sim.TEST_CURVES, 9, 50)])
def test_recorded_table(path, epochs, at_least):
    """The committed tables: complete curves, values in range, from the
    search space, with the set-up they were recorded with."""
    import hpo.setups
    import hpo.sim
    import hpo.tuner
    budget = 'full' if epochs == 27 else 'test'
    setup = hpo.setups.choose_setup(budget, n_gpus=0)
    assert hpo.sim.curves_for(setup) == path
    assert hpo.sim.table_setup(path) == dict(
        setup.constants, threads_per_trial=1, n_workers=2)
    for other in (dict(n_workers=4), dict(threads_per_trial=2)):
        assert hpo.sim.curves_for(dataclasses.replace(setup, **other)) \
            is None
    curves = hpo.sim.load_curves(path)  # checks epochs 1..last
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
    for name, domain in hpo.tuner.search_space().items():
        outside = last[~last[name].map(domain.is_valid)]
        assert outside.empty, f'{name} outside {domain}: {outside}'
    header = [line for line in path.read_text().splitlines()
              if line.startswith('#')]
    assert any('torch' in line and 'syne-tune' in line for line in header)
    assert any(line.startswith('# seed:') for line in header)


def test_runs_are_the_same_in_parallel_and_in_any_order(curves):
    kwargs = dict(curves=curves, max_wallclock_time=150)
    serial = hpo.sim.run_many(['Hyperband', 'ASHA'], [0, 1, 2],
                              processes=1, **kwargs)
    parallel = hpo.sim.run_many(['Hyperband', 'ASHA'], [2, 1, 0],
                                processes=2, **kwargs)
    key = ['method', 'seed', 'time', 'trial_id', 'epoch']
    pd.testing.assert_frame_equal(
        serial.sort_values(key, kind='stable').reset_index(drop=True),
        parallel.sort_values(key, kind='stable').reset_index(drop=True))


def test_stopping_at_a_target_keeps_the_time_to_reach_it(curves):
    target = hpo.sim.default_target(curves, quantile=0.3)
    full = hpo.sim.run_many(['random search', 'ASHA'], range(4), curves,
                            max_wallclock_time=300)
    short = hpo.sim.run_many(['random search', 'ASHA'], range(4), curves,
                             max_wallclock_time=300, stop_below=target)
    assert len(short) < len(full)
    pd.testing.assert_series_equal(
        hpo.stats.times_to_target(full, target),
        hpo.stats.times_to_target(short, target))
    assert np.isfinite(hpo.stats.times_to_target(full, target)).any()


def test_cached_recomputes_only_when_something_changed(curves, tmp_path):
    calls = []

    def compute(curves, factor):
        calls.append(factor)
        return pd.DataFrame({'k': [1, 2], 'value': [factor, 2 * factor]}
                            ).set_index('k')

    path = tmp_path / 'cache.csv'
    first = hpo.sim.cached(path, compute, curves=curves, factor=1.5)
    again = hpo.sim.cached(path, compute, curves=curves, factor=1.5)
    assert calls == [1.5]
    pd.testing.assert_frame_equal(first, again)
    assert first.index.name == 'k' and first.loc[2, 'value'] == 3.0
    hpo.sim.cached(path, compute, curves=curves, factor=2.0)
    assert calls == [1.5, 2.0]
    with pytest.MonkeyPatch.context() as mp:  # new code, new results
        mp.setattr(hpo.sim, 'SIM_VERSION', hpo.sim.SIM_VERSION + 1)
        hpo.sim.cached(path, compute, curves=curves, factor=2.0)
    assert calls == [1.5, 2.0, 2.0]


def test_epochs_per_trial_counts_each_rungs_survivors():
    """ASHA's idealised budget: all trials run to rung 1, a third of them
    2 epochs more to rung 3, a ninth 6 more to rung 9, ..."""
    assert hpo.sim.epochs_per_trial(1, 3, 27) == \
        pytest.approx(1 + 2 / 3 + 6 / 9 + 18 / 27)
    assert hpo.sim.epochs_per_trial(1, 3, 9) == \
        pytest.approx(1 + 2 / 3 + 6 / 9)
    assert hpo.sim.epochs_per_trial(1, 2, 1) == 1
