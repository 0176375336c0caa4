"""What happened to each trial of a run, on true wall-clock time: one row
per trial (``start``, ``end``, ``epochs``, errors, ``status``), and what
follows from such a table: busy fraction, gaps between trials, workers."""
import json
from pathlib import Path

import numpy as np
import pandas as pd

# How a trial ended (ended_as says when each applies)
STATUSES = ('completed', 'stopped', 'diverged', 'cut off', 'failed')


def ended_as(epochs, max_epochs, stopped=False, diverged=False, failed=False):
    """How a trial ended, one of ``STATUSES``, in every table of trials:
    ``failed`` (its process ended unfinished), ``completed`` (``max_epochs``
    trained), ``diverged`` (a non-finite loss stopped it), ``stopped`` (by
    the scheduler), else ``cut off`` (running when time was up)."""
    if failed:
        return 'failed'
    if epochs >= max_epochs:
        return 'completed'
    if diverged:
        return 'diverged'
    return 'stopped' if stopped else 'cut off'


def trial_table(exp):
    """One row per trial of a finished experiment, with its configuration and
    ``log`` (std.err). Seconds since the tuner started, worker-side: a trial
    starts when LocalBackend wrote its ``config.json``, ends at its last
    report or when the tuner killed it (LocalBackend's ``stop`` file)."""
    t0 = exp.metadata['st_tuner_start_timestamp']
    trial_dirs = [p for p in Path(exp.path).iterdir() if p.name.isdigit()]
    df = exp.results  # None if no trial has reported yet
    if df is None:
        df = pd.DataFrame({'trial_id': []})
    rows = [_trial_row(trial_dir, t0, df[df.trial_id == int(trial_dir.name)])
            for trial_dir in sorted(trial_dirs, key=lambda p: int(p.name))]
    return pd.DataFrame(rows).set_index('trial_id')


def _trial_row(trial_dir, t0, reports):
    """``trial_table``'s row for one trial, from its folder and reports."""
    config = trial_dir / 'config.json'
    row = dict(trial_id=int(trial_dir.name),
               start=config.stat().st_mtime - t0, epochs=0,
               validation_error=np.nan, test_error=np.nan,
               best_error=np.nan, log=trial_dir / 'std.err')
    row.update(json.loads(config.read_text()))
    last_report, stopped = None, False
    if len(reports):
        last = reports.iloc[-1]
        last_report = last['st_worker_timestamp'] - t0
        stopped = last['st_decision'] == 'STOP'
        row.update(epochs=int(last['epoch']),
                   validation_error=last['validation_error'],
                   test_error=last.get('test_error', np.nan),
                   best_error=reports['validation_error'].min())
    stop = trial_dir / 'stop'  # the tuner ended the trial
    killed = stop.stat().st_mtime - t0 if stop.exists() else None
    # a trial that ended by itself reported its test error last
    by_itself = killed is None and pd.notna(row['test_error'])
    status = ended_as(row['epochs'], row['max_epochs'], stopped=stopped,
                      diverged=by_itself,
                      failed=killed is None and not by_itself)
    if status in ('stopped', 'cut off'):
        end = killed
    elif status == 'failed':
        ended = trial_dir / 'end'  # LocalBackend's time stamp, polled
        end = (float(ended.read_text()) - t0 if ended.exists()
               else last_report or row['start'])
    else:
        end = last_report
    return dict(row, status=status, end=end)


def report_times(exp):
    """Reports with ``time``: seconds since the tuner started (worker side),
    and ``final``: the report of a trial that ran all its epochs."""
    df, t0 = exp.results, exp.metadata['st_tuner_start_timestamp']
    return df.assign(time=df['st_worker_timestamp'] - t0,
                     final=df['epoch'] == df['config_max_epochs'])


def assign_workers(trials, n_workers):
    """Give each trial the worker free the longest at its start: a valid
    assignment, as at most ``n_workers`` trials run at once (LocalBackend
    records none)."""
    free_at = [0.0] * n_workers
    workers = {}
    for trial_id, row in trials.sort_values('start').iterrows():
        w = int(np.argmin(free_at))
        workers[trial_id] = w
        free_at[w] = row['end']
    return pd.Series(workers).reindex(trials.index)


def busy_fraction(trials, n_workers, horizon=None):
    """Share of the workers' time (0 to ``horizon``) occupied by trials."""
    horizon = horizon or trials['end'].max()
    busy = (trials['end'].clip(upper=horizon)
            - trials['start'].clip(lower=0)).clip(lower=0).sum()
    return busy / (n_workers * horizon)


def idle_gaps(trials, workers):
    """Seconds from a trial's end to the next start on the same worker."""
    by_worker = trials.assign(worker=workers).sort_values(['worker', 'start'])
    previous_end = by_worker.groupby('worker')['end'].shift()
    return (by_worker['start'] - previous_end).dropna().to_numpy()


def failed_trials(trials, n_lines=5):
    """Print where the log of every failed trial is (relative to the
    experiments folder), and its last lines."""
    failed = trials[trials['status'] == 'failed']
    if not len(failed):
        print('no trial failed')
    for trial_id, row in failed.iterrows():
        log = Path(row['log'])
        lines = log.read_text().strip().splitlines()
        shown = log.relative_to(log.parents[2])  # experiment/trial/std.err
        print(f'trial {trial_id} failed; its log is {shown}:')
        print('\n'.join('    ' + line for line in lines[-n_lines:]))
    return failed


def scheduler_rung_levels(scheduler):
    """The rung levels of an ``ASHA`` scheduler's first bracket, read
    from it, ascending, below ``max_t`` (where trials are done)."""
    return sorted(r for r, _ in scheduler.brackets[0].rungs
                  if r < scheduler.max_t)


def rung_occupancy(trials, levels, max_epochs):
    """How many trials reached each rung level, and the full budget."""
    return pd.Series({r: int((trials['epochs'] >= r).sum())
                      for r in list(levels) + [max_epochs]},
                     name='trials')


def epochs_after_stop(exp, trials):
    """Epochs each stopped trial reported (its own std.out) after the
    report at which the scheduler said STOP (the results table)."""
    from syne_tune.report import retrieve
    df = exp.results
    extra = {}
    for trial_id in trials.index[trials['status'] == 'stopped']:
        stops = df[(df.trial_id == trial_id) & (df.st_decision == 'STOP')]
        decided_at = int(stops['epoch'].iloc[0])
        out = (Path(exp.path) / str(trial_id) / 'std.out').read_text()
        reported = [m['epoch'] for m in retrieve(out.splitlines())]
        extra[trial_id] = max(reported) - decided_at
    return pd.Series(extra, dtype=int, name='extra epochs')


def startup_times(exp):
    """Each trial's start-up in seconds, by phase, from the line its
    script printed (``hpo.training.read_startup``)."""
    from hpo.training import read_startup
    rows = {}
    for trial_dir in Path(exp.path).iterdir():
        out = trial_dir / 'std.out'
        if trial_dir.name.isdigit() and out.exists():
            startup = read_startup(out.read_text())
            if startup is not None:
                rows[int(trial_dir.name)] = startup
    table = pd.DataFrame.from_dict(rows, orient='index').sort_index()
    return table.drop(columns='cpu', errors='ignore')  # seconds only
