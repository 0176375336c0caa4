"""The statistics of hpo/stats.py on runs written out by hand:
what a tuner delivers, times to a target, paired comparisons."""
import numpy as np
import pandas as pd
import pytest

import hpo.stats


def toy_runs():
    """Three seeds of two methods. Only ``final`` reports deliver."""
    return pd.DataFrame(dict(
        method=['a'] * 6 + ['b'] * 4,
        seed=[0, 0, 1, 1, 2, 2, 0, 1, 2, 2],
        time=[1.0, 3.0, 2.0, 4.0, 5.0, 0.5, 2.0, 1.0, 1.0, 6.0],
        validation_error=[0.5, 0.2, 0.4, 0.3, 0.1, 0.05, 0.35, 0.3, 0.5,
                          0.2],
        final=[True, True, True, True, True, False, True, True, True,
               True],
        n_trials=[2, 2, 2, 2, 2, 2, 1, 1, 2, 2]))


def test_only_trials_that_ran_all_epochs_deliver():
    runs = toy_runs()
    a = runs[runs['method'] == 'a']
    # seed 2 reported 0.05 at 0.5 s, but from a trial stopped early
    assert hpo.stats.best_at(a[a['seed'] == 2], [1.0, 6.0]).tolist()[1] \
        == pytest.approx(0.1)
    assert np.isnan(hpo.stats.best_at(a[a['seed'] == 2], [1.0])[0])
    q = hpo.stats.best_so_far_quantiles(a, [0.5, 4.5, 6.0])
    assert q['median'].isna().tolist() == [True, True, False]
    assert q['median'].iloc[2] == pytest.approx(0.2)
    assert hpo.stats.target_error(a, 4.5) == pytest.approx(0.3)


def test_runs_that_delivered_nothing_count_as_worst():
    """A run with no report at all (a horizon shorter than any trial) is
    kept by run_many as one empty row; it delivers nothing."""
    empty = pd.DataFrame(dict(method=['a', 'a'], seed=[0, 1],
                              time=[np.nan, np.nan], final=[False, False],
                              validation_error=[np.nan, np.nan]))
    assert np.isnan(hpo.stats.best_at(empty[empty.seed == 0], [1.0])).all()
    assert hpo.stats.target_error(empty, 1.0) == np.inf
    assert np.isinf(hpo.stats.times_to_target(empty, 0.5)).all()


def test_times_to_target():
    reach = hpo.stats.times_to_target(toy_runs(), 0.3)
    assert reach.loc['a'].tolist() == [3.0, 4.0, 5.0]
    assert reach.loc['b'].tolist() == [np.inf, 1.0, 6.0]
    assert np.isinf(hpo.stats.times_to_target(toy_runs(), 0.01)).all()


def test_paired_comparison_is_paired_and_censored():
    times = hpo.stats.times_to_target(toy_runs(), 0.3)
    table = hpo.stats.paired_comparison(times, horizon=8.0, reference='a')
    b = table.loc['b']
    # seed 0: a 3, b censored at 8; seed 1: a 4, b 1; seed 2: a 5, b 6
    assert b['first'] == pytest.approx(1 / 3) and b['seeds'] == 3
    assert b['median_time'] == 6.0
    assert b['ratio'] == pytest.approx(6.0 / 5.0)
    assert b['low'] <= b['ratio'] <= b['high']
    assert b['first_low'] <= b['first'] <= b['first_high']
    assert b['reached'] == pytest.approx(2 / 3)
    assert table.loc['a', 'ratio'] == 1.0
    assert table.loc['a', 'first'] == 0.5  # ties with itself


def test_bootstrap_interval_covers_and_repeats():
    logs = np.random.default_rng(0).normal(0.3, 0.2, size=(200, 2))
    times = pd.Series(np.exp(logs).ravel(), index=pd.MultiIndex.from_product(
        [range(200), ['ref', 'x']], names=['seed', 'method'])).swaplevel()
    table = hpo.stats.paired_comparison(times, np.inf, reference='ref')
    x = table.loc['x']
    assert x['low'] < x['ratio'] < x['high']
    assert x['high'] / x['low'] < 1.2
    again = hpo.stats.paired_comparison(times, np.inf, reference='ref')
    pd.testing.assert_frame_equal(table, again)


def test_place_run_and_its_sentence():
    runs = toy_runs()
    sims = runs[runs['method'] == 'a']
    real = pd.DataFrame(dict(time=[1.0, 2.0], validation_error=[0.3, 0.25],
                             final=[True, True]))
    place = hpo.stats.place_run(real, 2, sims, horizon=4.5)
    assert place['best'] == 0.25 and place['seeds'] == 3
    # simulated bests at 4.5 s: 0.2, 0.3, none (worst)
    assert place['worse'] == pytest.approx(2 / 3)
    assert place['trials'] == 2 and place['fewer'] == 0.5
    text = hpo.stats.describe_run(place, 4.5)
    assert 'started 2 trials' in text and '0.2500' in text
    assert 'inside' in text and '67%' in text


def test_ties_count_half():
    values = pd.Series([1, 2, 2, 3])
    assert hpo.stats.share_below(values, 2) == pytest.approx(0.5)
    assert hpo.stats.share_below(values, 0) == 0
    assert hpo.stats.share_below(values, np.inf) == 1
