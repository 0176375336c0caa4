"""The chapter's figures, drawn with d2l's matplotlib settings."""
import numpy as np

import hpo.stats
from hpo.trials import STATUSES, assign_workers, report_times

# one colour per status, in the order of trials.STATUSES
STATUS_COLORS = dict(zip(STATUSES, ['C0', 'C1', 'C3', 'C7', 'k']))
TIME = 'wall-clock time (s)'


def _axes(size, ylabel=None, xlabel=TIME, grid=True):
    """New axes of ``size`` inches (d2l's settings), labelled."""
    from d2l import torch as d2l
    d2l.set_figsize(size)
    ax = d2l.plt.gca()
    ax.set(xlabel=xlabel, ylabel=ylabel or '')
    if grid:
        ax.grid(alpha=0.3)
    return ax


def plot_best_so_far(exp):
    """Best validation error reported so far, over true wall-clock time."""
    df = report_times(exp).sort_values('time')
    ax = _axes((3.5, 2.5), 'best validation error')
    ax.step(df['time'], df['validation_error'].cummin(), where='post')
    return ax


def plot_learning_curves(exp, trials):
    """Validation error of every trial over true wall-clock time; the
    marker at a curve's end says how the trial ended."""
    df = report_times(exp)
    ax = _axes((6, 3), 'validation error')
    for trial_id, t in df.groupby('trial_id'):
        status = trials.loc[trial_id, 'status']
        color = STATUS_COLORS[status]
        ax.plot(t['time'], t['validation_error'], '-', color=color,
                lw=0.8, alpha=0.7)
        ax.plot(t['time'].iloc[-1:], t['validation_error'].iloc[-1:],
                'x' if status == 'stopped' else 'o', color=color, ms=4)
    for status, color in STATUS_COLORS.items():
        if (trials['status'] == status).any():
            ax.plot([], [], 'x' if status == 'stopped' else 'o',
                    color=color, label=status)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.0, 1.0),
              frameon=False)
    return ax


def _gantt(ax, starts, ends, rows, colors, labels=None, names=None):
    """One bar per trial on its row (``names``: 'worker 0', ...)."""
    for i, (s, e, w, c) in enumerate(zip(starts, ends, rows, colors)):
        ax.barh(w, e - s, left=s, height=0.8, color=c, edgecolor='white',
                linewidth=0.5)
        if labels is not None and e - s > 0:
            ax.text((s + e) / 2, w, str(labels[i]), ha='center',
                    va='center', fontsize=6, color='white')
    names = names or [f'worker {w}' for w in range(int(max(rows)) + 1)]
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()


def _status_gantt(trials, rows, names, labels=None):
    """A Gantt chart of ``trials`` coloured by status, with a legend."""
    ax = _axes((6, 0.45 * len(names) + 1.0), grid=False)
    _gantt(ax, trials['start'], trials['end'], rows,
           [STATUS_COLORS[s] for s in trials['status']], labels, names)
    for status, color in STATUS_COLORS.items():
        if (trials['status'] == status).any():
            ax.barh([0], [0], color=color, label=status)
    ax.legend(fontsize='small', ncol=5, loc='lower center',
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    return ax


def plot_timeline(trials, n_workers, label_trials=True):
    """Gantt chart: which worker ran which trial, and when."""
    workers = assign_workers(trials, n_workers)
    _status_gantt(trials, workers, [f'worker {w}' for w in range(n_workers)],
                  list(trials.index) if label_trials else None)
    return workers


def plot_nodes(trials):
    """Gantt chart: which node ran which trial, and when."""
    placed = trials.dropna(subset=['node'])
    names = sorted(placed['node'].unique(), key=lambda n: (n != 'head', n))
    return _status_gantt(placed, placed['node'].map(
        {n: i for i, n in enumerate(names)}).to_numpy(), names)


def plot_schedules(schedules):
    """Gantt charts of trials scheduled in different ways, one above the
    other; ``schedules`` maps a name to ``(starts, ends, workers)``."""
    from d2l import torch as d2l
    n_workers = max(int(w.max()) for _, _, w in schedules.values()) + 1
    fig, axes = d2l.plt.subplots(
        len(schedules), 1, sharex=True,
        figsize=(6, 0.35 * len(schedules) * n_workers + 1.6))
    for ax, (name, (starts, ends, workers)) in zip(axes, schedules.items()):
        colors = ['C0' if i % 2 == 0 else 'C9' for i in range(len(starts))]
        _gantt(ax, starts, ends, workers, colors)
        ax.set_title(name, fontsize='small')
    axes[-1].set_xlabel(TIME)
    fig.tight_layout()


def plot_rung_occupancy(occupancy):
    """Bar chart: trials that reached each rung level."""
    ax = _axes((3.5, 2.5), 'trials reaching it', 'epochs (rung level)',
               grid=False)
    ax.bar([str(r) for r in occupancy.index], occupancy.values, color='C0')
    for i, n in enumerate(occupancy.values):
        ax.text(i, n, str(n), ha='center', va='bottom', fontsize='small')
    return ax


def plot_ecdf(times, horizon, methods=None):
    """Per method, the share of runs that had delivered the target by
    each time, from ``hpo.stats.times_to_target`` (runs that never got
    there keep the line below 1)."""
    ax = _axes((6, 3), 'share of runs at the target',
               'simulated wall-clock time (s)')
    for i, method in enumerate(methods or times.index.unique('method')):
        t = np.sort(times[method].to_numpy())
        share = np.arange(1, len(t) + 1) / len(t)
        within = t <= horizon
        ax.step(np.r_[0, t[within], horizon],
                np.r_[0, share[within], within.mean()], where='post',
                color=f'C{i}', label=method)
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize='small')
    return ax


def plot_run_over_band(reports, sims, horizon, label='this run'):
    """A real run's best delivered error so far, over the pointwise
    median and quartiles of simulated runs of one method
    (``hpo.sim.run_many`` output) if ``sims`` is not None."""
    ax = _axes((6, 3), 'best delivered error')
    grid = np.linspace(0, horizon, 400)
    values = [hpo.stats.best_at(reports, grid)]
    if sims is not None:
        q = hpo.stats.best_so_far_quantiles(sims, grid)
        ax.fill_between(grid, q['q25'], q['q75'], step='post', color='C0',
                        alpha=0.2, linewidth=0,
                        label='simulated: quartiles at each time')
        ax.step(grid, q['median'], where='post', color='C0',
                label='simulated: median at each time')
        values.append(q['median'].to_numpy())
    ax.step(grid, values[0], where='post', color='C3', linewidth=2,
            label=label)
    shown = np.concatenate([v[grid >= horizon / 4] for v in values])
    shown = shown[np.isfinite(shown)]
    if len(shown):
        margin = 0.1 * np.ptp(shown) + 0.002
        ax.set_ylim(shown.min() - margin, shown.max() + margin)
    ax.set_xlim(0, horizon)
    ax.legend(fontsize='small')
    return ax


def plot_saving(saving):
    """ASHA's time to random search's target over random search's,
    against the start-up cost; one line per number of epochs, with 95%
    intervals (``hpo.sim.saving_sweep``)."""
    ax = _axes((4.5, 3), 'ASHA time / random search time',
               'start-up cost per trial (s)')
    for i, (epochs, rows) in enumerate(saving.groupby('epochs')):
        ax.errorbar(rows['startup'], rows['ratio'],
                    yerr=[rows['ratio'] - rows['low'],
                          rows['high'] - rows['ratio']],
                    marker='o', capsize=3, color=f'C{i}',
                    label=f'r_max = {epochs} epochs')
    ax.axhline(1.0, color='gray', linestyle=':', linewidth=1)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize='small')
    return ax
