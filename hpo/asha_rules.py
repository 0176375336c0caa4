"""The ASHA stopping rules of Syne Tune 0.16 and Ray Tune 2.60, recomputed.

Both keep one bracket of rung levels and, at each rung, the errors of the
trials judged there. A report at ``max_t`` or later stops its trial (it is
done); otherwise the highest rung at or below its epoch that has not yet
judged the trial judges it, and records its error whatever the decision.
Only the rule at a rung differs (``syne_tune_rule``, ``ray_tune_rule``).
"""
import statistics
from fractions import Fraction

import pandas as pd


def syne_tune_rule(previous, error, eta):
    """Syne Tune 0.16: continue if at most a share ``1/eta`` of
    ``previous`` and ``error`` is strictly better than ``error``."""
    better = sum(v < error for v in previous)
    share = Fraction(better, len(previous) + 1)
    return 'CONTINUE' if share <= Fraction(1, eta) else 'STOP'


def ray_tune_rule(previous, error, eta):
    """Ray Tune 2.60: continue if ``error`` is below the
    ``1/eta``-quantile of ``previous`` (linear interpolation); exactly on
    it, floating point could tip Ray either way: ``'TIE'``."""
    if not previous:
        return 'CONTINUE'
    # exact on fractions; statistics.quantiles needs two values or more
    q = (statistics.quantiles(previous, n=eta, method='inclusive')[0]
         if len(previous) > 1 else previous[0])
    if error == q:
        return 'TIE'
    return 'CONTINUE' if error < q else 'STOP'


RULES = {'Ray Tune': ray_tune_rule, 'Syne Tune': syne_tune_rule}


def decisions(reports, levels, max_t, eta, rule):
    """``rule``'s decision on each of ``reports`` (``trial_id``,
    ``epoch``, ``error``) in their order: ``'CONTINUE'``, ``'STOP'`` or
    ``'TIE'``. ``levels``: the rung levels below ``max_t``. Errors are
    compared exactly, as the fractions their floats are."""
    recorded = {r: {} for r in levels}  # at each rung: trial id -> error
    out = []
    for row in reports.itertuples():
        open_rungs = [r for r in levels
                      if r <= row.epoch and row.trial_id not in recorded[r]]
        if row.epoch >= max_t:  # the trial is done
            out.append('STOP')
        elif not open_rungs:
            out.append('CONTINUE')
        else:
            at_rung = recorded[open_rungs[-1]]
            error = Fraction(float(row.error))
            out.append(rule(list(at_rung.values()), error, eta))
            at_rung[row.trial_id] = error
    return out


def both_rules(reports, levels, max_t, eta):
    """``reports`` with one column of decisions per rule in ``RULES``."""
    table = reports[['trial_id', 'epoch', 'error']].reset_index(drop=True)
    for name, rule in RULES.items():
        table[name] = decisions(table, levels, max_t, eta, rule)
    return table


def disagreements(table, max_t, first='Ray Tune', second='Syne Tune'):
    """Each rule's stops below ``max_t`` in ``table`` (``both_rules``),
    and how often one stopped a trial the other continued (ties: neither).
    """
    early = table['epoch'] < max_t
    stops = {n: early & (table[n] == 'STOP') for n in (first, second)}
    counts = {f'{n} stops': int(s.sum()) for n, s in stops.items()}
    for a, b in ((first, second), (second, first)):
        counts[f'stopped by {a}, continued by {b}'] = int(
            (stops[a] & (table[b] == 'CONTINUE')).sum())
    return pd.Series(counts)
