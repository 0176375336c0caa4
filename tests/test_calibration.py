"""``benchmarks/calibration.py`` without its hour of real runs: that the
real runs it makes try what the simulator tries, in the same order, and
that its comparison counts fairly."""
import dataclasses

import pandas as pd
import pytest

import hpo.setups
import hpo.sim
from benchmarks import calibration


@pytest.mark.parametrize('method', sorted(calibration.METHODS))
def test_real_runs_try_the_simulators_configurations_in_order(method):
    curves = hpo.sim.load_curves(hpo.sim.CURVES)
    setup = dataclasses.replace(hpo.setups.choose_setup('full', n_gpus=0),
                                n_workers=2, threads_per_trial=1)
    seed = 3
    ids, points = calibration.table_points(curves, seed)
    drawn = [p['config_id'] for p in hpo.sim.sampled_configs(seed, 200)]
    assert ids == drawn[:len(ids)]
    table = curves.groupby('config_id').first()
    assert [table.loc[i, 'batch_size'] for i in ids[:10]] == \
        [p['batch_size'] for p in points[:10]]
    scheduler = calibration.scheduler_for(method, setup, points, seed)
    for point in points[:6]:
        config = scheduler.suggest().config
        assert {k: config[k] for k in point} == point
        assert config['max_epochs'] == setup.constants['max_epochs']


def test_kept_runs_are_found_and_measured():
    """The kept real runs are what the section cites: every seed's files;
    random search's speed factor is the ratio of its trials' real to
    recorded durations, and ASHA's, made on the same machine, is close."""
    curves = hpo.sim.load_curves(hpo.sim.CURVES)
    last = curves[curves['epoch'] == 27].set_index('config_id')
    factors = {}
    for method in calibration.METHODS:
        seeds = calibration.kept_seeds(method)
        assert seeds == list(range(len(seeds))) and len(seeds) >= 5
        trials, reports = calibration.kept_run(method, seeds[0])
        assert reports['final'].any()
        factors[method] = hpo.sim.speed_factor(reports, trials, curves)
    trials, reports = calibration.kept_run('random search', 0)
    done = trials[trials['status'] == 'completed']
    exact = ((done['end'] - done['start']).sum()
             / last.loc[done['config_id'], 'cpu_time'].sum())
    assert factors['random search'] == pytest.approx(exact, rel=0.03)
    assert factors['ASHA'] == pytest.approx(exact, rel=0.1)
    kept = pd.read_csv(calibration.PLACEMENT)
    assert sorted(kept['method'].unique()) == sorted(calibration.METHODS)
    # each run is placed on its own clock and on the other runs' clock
    measured = calibration.measured_factors(curves)
    assert sorted(kept['clock'].unique()) == sorted(calibration.CLOCKS)
    for r in kept.itertuples():
        own = measured[r.method, r.seed]
        assert (r.factor == pytest.approx(own, rel=1e-5)) == \
            (r.clock == 'own')
