"""Statistics over tuning runs, real or simulated, on one definition.

*The error a tuner delivers* is the final validation error of a trial
that ran all its epochs (nothing is checkpointed). A run's *time to a
target* is the end of the first such trial at or below it; a run that
never got there is *censored* at its horizon. Reports have the columns
``time``, ``validation_error`` and ``final`` (a trial's last epoch), from
:mod:`hpo.sim` or ``hpo.trials.report_times``.
"""
import numpy as np
import pandas as pd
from scipy import stats


def best_at(reports, grid):
    """Best delivered error at each time of ``grid`` (NaN before any)."""
    done = reports[reports['final'].astype(bool)].sort_values(
        'time', kind='stable')
    best = np.minimum.accumulate(done['validation_error'].to_numpy(float))
    idx = np.searchsorted(done['time'].to_numpy(float), grid, side='right')
    return np.concatenate([[np.nan], best])[idx]  # idx 0: before any


def target_error(runs, horizon):
    """The median over runs of the best delivered error at ``horizon``
    (a run that delivered nothing by then counts as worst)."""
    best = [best_at(r, [horizon])[0] for _, r in runs.groupby('seed')]
    return float(np.median(np.nan_to_num(best, nan=np.inf)))


def times_to_target(runs, target):
    """Per ``method`` and ``seed``: the time the run first delivered an
    error at or below ``target`` (``inf``: never)."""
    hit = runs[runs['final'].astype(bool)
               & (runs['validation_error'] <= target)]
    first = hit.groupby(['method', 'seed'], sort=False)['time'].min()
    every = runs.groupby(['method', 'seed'], sort=False).size().index
    return first.reindex(every, fill_value=np.inf).rename('time')


def _interval(values, statistic):
    """95% percentile bootstrap interval of ``statistic`` (scipy)."""
    values = np.asarray(values, dtype=float)
    if len(np.unique(values)) == 1:  # no spread: the interval is a point
        return (statistic(values),) * 2
    ci = stats.bootstrap((values,), statistic, method='percentile',
                         n_resamples=2000, random_state=0).confidence_interval
    return float(ci.low), float(ci.high)


def paired_comparison(times, horizon, reference='random search'):
    """Each method's times to a target (:func:`times_to_target`) against
    ``reference``'s, seed by seed, censored at ``horizon`` (or
    ``horizon[method]``). One row per method: ``reached`` (share of
    runs), ``median_time``, ``ratio`` (median over seeds of the time
    ratio, on logs) with its 95% bootstrap interval (``low``, ``high``),
    and ``first``, the share of seeds where it got there first (ties
    count half), with its interval. Censoring pulls ratios towards 1."""
    wide = times.unstack('method')
    censored = wide.clip(upper=pd.Series(horizon, index=wide.columns), axis=1)
    ref = censored[reference].to_numpy()
    rows = []
    for method in censored.columns:
        t = censored[method].to_numpy()
        logs = np.log(t / ref)
        first = (t < ref) + 0.5 * (t == ref)
        low, high = np.exp(_interval(logs, np.median))
        first_low, first_high = _interval(first, np.mean)
        rows.append(dict(
            method=method, reached=np.isfinite(wide[method]).mean(),
            median_time=np.median(t), ratio=np.exp(np.median(logs)),
            low=low, high=high, first=first.mean(), first_low=first_low,
            first_high=first_high, seeds=len(t)))
    return pd.DataFrame(rows).set_index('method')


def verdict(low, high, other):
    """What a 95% interval of a ratio of times says against ``other``."""
    if high < 1:
        return f'faster than {other}'
    if low > 1:
        return f'slower than {other}'
    return f'not told apart from {other}'


def best_so_far_quantiles(runs, grid):
    """Per method and time of ``grid``: pointwise ``median``, ``q25`` and
    ``q75`` over seeds of the best delivered error so far; NaN until
    every run has delivered."""
    rows = []
    for method, by_method in runs.groupby('method', sort=False):
        best = np.stack([best_at(r, grid)
                         for _, r in by_method.groupby('seed')])
        q = np.quantile(best, [0.25, 0.5, 0.75], axis=0)  # a NaN propagates
        rows.append(pd.DataFrame(dict(method=method, time=grid,
                                      q25=q[0], median=q[1], q75=q[2])))
    return pd.concat(rows, ignore_index=True)


def share_below(values, value):
    """The share of ``values`` below ``value``, ties counting half."""
    values = np.asarray(values, dtype=float)
    return float((values < value).mean() + 0.5 * (values == value).mean())


def place_run(reports, n_trials, sims, horizon):
    """Where a real run (its ``reports``, ``n_trials`` started) fell among
    simulated runs of one method (``hpo.sim.run_many``) over ``horizon``
    seconds: trial counts (real, simulated median, 10% and 90%, share with
    fewer) and best delivered errors (real, simulated median and quartiles,
    share worse; ties count half, nothing delivered counts as worst)."""
    counts = sims.groupby('seed')['n_trials'].first()
    best = np.nan_to_num([best_at(r, [horizon])[0]
                          for _, r in sims.groupby('seed')], nan=np.inf)
    real = np.nan_to_num(best_at(reports, [horizon])[0], nan=np.inf)
    with np.errstate(invalid='ignore'):  # inf - inf in interpolation
        q25, median, q75 = np.quantile(best, [0.25, 0.5, 0.75])
    return dict(
        trials=n_trials, trials_median=counts.median(),
        trials_10=counts.quantile(0.1), trials_90=counts.quantile(0.9),
        fewer=share_below(counts, n_trials), best=real, median=median,
        q25=q25, q75=q75, worse=1 - share_below(best, real), seeds=len(counts))


def describe_run(place, horizon):
    """Two sentences on where a real run fell, from :func:`place_run`."""
    inside = place['trials_10'] <= place['trials'] <= place['trials_90']
    return (
        'In {horizon:.0f} s this run started {trials} trials; {seeds} '
        'simulated runs of its set-up started {trials_10:g} to '
        '{trials_90:g} (10% to 90%), median {trials_median:g}, so the real '
        'run is {where} that range. Its best delivered error was {best:.4f}; '
        '{worse:.0%} of the simulated runs delivered worse (median '
        '{median:.4f}, quartiles {q25:.4f} to {q75:.4f}).'
    ).format(horizon=horizon, where='inside' if inside else 'OUTSIDE', **place)
