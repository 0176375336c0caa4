"""The simulator of chapter_hpo/hpo_sim.py: tables, seeds, rung levels.

Most tests replay a small synthetic table written here, so they run
without the recorded curves; the last one checks the recorded table itself
(skipped until record_curves.py has written it).
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CHAPTER = Path(__file__).resolve().parents[1] / 'chapter_hpo'

import hpo_sim  # noqa: E402

N_CONFIGS, N_EPOCHS = 24, 8


def synthetic_table(n_configs=N_CONFIGS, n_epochs=N_EPOCHS, seed=0):
    """Curves that fall towards a per-configuration floor; one diverges."""
    rng = np.random.default_rng(seed)
    rows = []
    for trial_id in range(n_configs):
        lr = float(np.exp(rng.uniform(np.log(1e-3), 0.0)))
        momentum = float(rng.uniform(0, 0.99))
        batch_size = int(rng.integers(16, 257))
        floor, speed = rng.uniform(0.1, 0.5), rng.uniform(0.3, 1.5)
        startup, per_epoch = rng.uniform(4, 7), rng.uniform(2, 6)
        last = 3 if trial_id == 1 else n_epochs  # trial 1 diverges
        for epoch in range(1, last + 1):
            error = floor + (0.9 - floor) * np.exp(-speed * epoch)
            diverged = epoch == last < n_epochs
            rows.append(dict(
                trial_id=trial_id, learning_rate=lr, momentum=momentum,
                batch_size=batch_size, epoch=epoch,
                validation_error=1.0 if diverged else round(error, 4),
                elapsed_time=startup + per_epoch * epoch,
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


def test_load_curves_pads_diverged_trial_truthfully(curves):
    assert curves['config_id'].nunique() == N_CONFIGS
    assert (curves.groupby('config_id').size() == N_EPOCHS).all()
    trial = curves[curves['trial_id'] == 1]
    assert trial['diverged'].all()
    padded = trial[trial['padded']]
    assert padded['epoch'].tolist() == list(range(4, N_EPOCHS + 1))
    assert (padded['validation_error'] == 1.0).all()
    at_divergence = trial.loc[trial['epoch'] == 3, 'elapsed_time'].item()
    assert (padded['elapsed_time'] == at_divergence).all()
    assert not curves.loc[curves['trial_id'] != 1, 'padded'].any()


@pytest.mark.parametrize('change, message', [
    (lambda t: t.drop(columns='elapsed_time'), 'missing column'),
    (lambda t: t[~((t.trial_id == 5) & (t.epoch == 4))], 'are not 1, 2'),
    (lambda t: t[~((t.trial_id == 5) & (t.epoch > 6))], 'not a divergence'),
    (lambda t: pd.concat([t, t[(t.trial_id == 5) & (t.epoch == 2)]]),
     'are not 1, 2'),
    (lambda t: t.assign(momentum=np.where(
        (t.trial_id == 5) & (t.epoch == 2), 0.5, t.momentum)),
     'momentum changes'),
    (lambda t: t.assign(elapsed_time=np.where(
        (t.trial_id == 5) & (t.epoch == 3), 0.5, t.elapsed_time)),
     'elapsed_time decreases'),
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
    assert value['elapsed_time'] == pytest.approx(row.elapsed_time)
    with pytest.raises(ValueError, match='config_id'):
        blackbox.objective_function({'config_id': N_CONFIGS})


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


@pytest.mark.parametrize('method, grace_period, reduction_factor', [
    ('ASHA', 1, 2), ('ASHA', 2, 2), ('ASHA', 1, 3), ('Hyperband', 1, 2),
])
def test_trials_stop_only_at_rung_levels(curves, method, grace_period,
                                         reduction_factor):
    levels = hpo_sim.rung_levels(grace_period, reduction_factor, N_EPOCHS)
    assert levels == [grace_period * reduction_factor ** k
                      for k in range(len(levels))]
    early = []
    for seed in range(3):
        trials = hpo_sim.simulate(
            method, seed, curves=curves, grace_period=grace_period,
            reduction_factor=reduction_factor,
            max_wallclock_time=400).trials
        ended = trials[trials['status'].isin(['stopped', 'completed'])]
        early += ended.loc[ended['epochs'] < N_EPOCHS, 'epochs'].tolist()
        assert (trials.loc[trials['status'] == 'completed', 'epochs']
                == N_EPOCHS).all()
    assert early, 'no trial was stopped early; the test proves nothing'
    assert set(early) <= set(levels)


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


def test_quantiles_and_time_to_reach():
    df = pd.DataFrame(dict(
        method='m', seed=[0, 0, 1, 1, 2],
        time=[1.0, 3.0, 2.0, 4.0, 5.0],
        validation_error=[0.5, 0.2, 0.4, 0.3, 0.1]))
    q = hpo_sim.best_so_far_quantiles(df, [0.5, 4.5, 6.0])
    assert q['median'].isna().tolist() == [True, True, False]
    assert q['median'].iloc[2] == pytest.approx(0.2)
    reach = hpo_sim.time_to_reach(df, 0.3)
    assert reach['time'].tolist() == [3.0, 4.0, 5.0]
    assert np.isinf(hpo_sim.time_to_reach(df, 0.05)['time']).all()
    summary = hpo_sim.summarize(df.assign(n_trials=3), 0.3)
    assert summary.loc['m', 'median_time'] == 4.0
    assert summary.loc['m', 'reached'] == 1.0
    assert summary.loc['m', 'final_best'] == pytest.approx(0.2)


def test_plot_quantiles_from_runs(curves):
    import matplotlib
    matplotlib.use('Agg')
    runs = hpo_sim.run_many(['random search', 'ASHA'], seeds=range(3),
                            curves=curves, max_wallclock_time=120)
    assert set(runs['method']) == {'random search', 'ASHA'}
    assert (runs.groupby(['method', 'seed'])['n_trials'].nunique() == 1).all()
    ax = hpo_sim.plot_quantiles(runs, ['ASHA'], target=0.3)
    assert [line.get_label() for line in ax.get_lines()][0] == 'ASHA'
    matplotlib.pyplot.close(ax.figure)


def test_recorded_table():
    path = hpo_sim.CURVES
    if not path.exists():
        pytest.skip(f'{path.name} not recorded yet; run '
                    'chapter_hpo/record_curves.py (about 15 minutes)')
    import hpo_utils
    raw = pd.read_csv(path, comment='#')
    curves = hpo_sim.load_curves(path)  # epochs 1..last, else ValueError
    assert curves['config_id'].nunique() >= 50
    assert curves['epoch'].max() == 8
    for config_id, epochs in curves.groupby('config_id')['epoch']:
        assert epochs.tolist() == list(range(1, 9)), config_id
    space = hpo_utils.search_space()
    configs = raw.groupby('trial_id')[list(space)].first()
    for name, domain in space.items():
        outside = configs[~configs[name].map(domain.is_valid)]
        assert outside.empty, f'{name} outside {domain}: {outside}'
    assert (configs['batch_size'] == configs['batch_size'].round()).all()
