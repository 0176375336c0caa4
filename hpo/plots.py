"""The chapter's figures, drawn with d2l's matplotlib settings."""
import numpy as np

import hpo.stats
from hpo.trials import STATUSES, assign_workers, report_times

# one colour per status, in the order of trials.STATUSES
STATUS_COLORS = dict(zip(STATUSES, ['C0', 'C1', 'C3', 'C7', 'k']))


def plot_best_so_far(exp):
    """Best validation error reported so far, over true wall-clock time."""
    from d2l import torch as d2l
    df = report_times(exp).sort_values('time')
    d2l.set_figsize()
    ax = d2l.plt.gca()
    ax.step(df['time'], df['validation_error'].cummin(), where='post')
    ax.set_xlabel('wall-clock time (s)')
    ax.set_ylabel('best validation error')
    ax.grid(alpha=0.3)
    return ax


def plot_learning_curves(exp, trials):
    """Validation error of every trial over true wall-clock time.

    Each curve is one trial; the marker at its end says how it ended.
    """
    from d2l import torch as d2l
    df = report_times(exp)
    d2l.set_figsize((6, 3))
    ax = d2l.plt.gca()
    for trial_id in trials.index:
        t = df[df.trial_id == trial_id]
        if not len(t):
            continue
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
    ax.set_xlabel('wall-clock time (s)')
    ax.set_ylabel('validation error')
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.0, 1.0),
              frameon=False)
    ax.grid(alpha=0.3)
    return ax


def _gantt(ax, starts, ends, workers, colors, labels=None):
    for i, (s, e, w, c) in enumerate(zip(starts, ends, workers, colors)):
        ax.barh(w, e - s, left=s, height=0.8, color=c, edgecolor='white',
                linewidth=0.5)
        if labels is not None and e - s > 0:
            ax.text((s + e) / 2, w, str(labels[i]), ha='center',
                    va='center', fontsize=6, color='white')
    n = int(max(workers)) + 1
    ax.set_yticks(range(n))
    ax.set_yticklabels([f'worker {w}' for w in range(n)])
    ax.invert_yaxis()


def plot_timeline(trials, n_workers, label_trials=True):
    """Gantt chart: which worker ran which trial, and when."""
    from d2l import torch as d2l
    workers = assign_workers(trials, n_workers)
    d2l.set_figsize((6, 0.45 * n_workers + 1.0))
    ax = d2l.plt.gca()
    _gantt(ax, trials['start'], trials['end'], workers,
           [STATUS_COLORS[s] for s in trials['status']],
           list(trials.index) if label_trials else None)
    for status, color in STATUS_COLORS.items():
        if (trials['status'] == status).any():
            ax.barh([0], [0], color=color, label=status)
    ax.set_xlabel('wall-clock time (s)')
    ax.legend(fontsize='small', ncol=5, loc='lower center',
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    return workers


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
    axes[-1].set_xlabel('wall-clock time (s)')
    fig.tight_layout()


def plot_rung_occupancy(occupancy):
    """Bar chart: trials that reached each rung level."""
    from d2l import torch as d2l
    d2l.set_figsize((3.5, 2.5))
    ax = d2l.plt.gca()
    labels = [str(r) for r in occupancy.index]
    ax.bar(labels, occupancy.values, color='C0')
    for i, n in enumerate(occupancy.values):
        ax.text(i, n, str(n), ha='center', va='bottom', fontsize='small')
    ax.set_xlabel('epochs (rung level)')
    ax.set_ylabel('trials reaching it')
    return ax


def plot_ecdf(times, horizon, methods=None):
    """Per method, the share of runs that had delivered the target by
    each time (an empirical distribution function of the times from
    ``hpo.stats.times_to_target``; runs that never got there keep the
    line below 1)."""
    from d2l import torch as d2l
    d2l.set_figsize((6, 3))
    ax = d2l.plt.gca()
    for i, method in enumerate(methods or times.index.unique('method')):
        t = np.sort(times[method].to_numpy())
        share = np.arange(1, len(t) + 1) / len(t)
        within = t <= horizon
        ax.step(np.r_[0, t[within], horizon],
                np.r_[0, share[within], share[within][-1:]
                      if within.any() else 0], where='post',
                color=f'C{i}', label=method)
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel('simulated wall-clock time (s)')
    ax.set_ylabel('share of runs at the target')
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    return ax


def plot_run_over_band(reports, sims, horizon, label='this run'):
    """A real run's best delivered error so far, over the pointwise
    median and quartiles of simulated runs of one method
    (``hpo.sim.run_many`` output) if ``sims`` is not None."""
    from d2l import torch as d2l
    d2l.set_figsize((6, 3))
    ax = d2l.plt.gca()
    grid = np.linspace(0, horizon, 400)
    real = hpo.stats.best_at(reports, grid)
    values = [real]
    if sims is not None:
        q = hpo.stats.best_so_far_quantiles(sims, grid)
        ax.fill_between(grid, q['q25'], q['q75'], step='post', color='C0',
                        alpha=0.2, linewidth=0,
                        label='simulated: quartiles at each time')
        ax.step(grid, q['median'], where='post', color='C0',
                label='simulated: median at each time')
        values.append(q['median'].to_numpy())
    ax.step(grid, real, where='post', color='C3', linewidth=2, label=label)
    shown = np.concatenate([v[grid >= horizon / 4] for v in values])
    shown = shown[np.isfinite(shown)]
    if len(shown):
        margin = 0.1 * np.ptp(shown) + 0.002
        ax.set_ylim(shown.min() - margin, shown.max() + margin)
    ax.set_xlim(0, horizon)
    ax.set_xlabel('wall-clock time (s)')
    ax.set_ylabel('best delivered error')
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    return ax


def plot_saving(saving):
    """ASHA's time to random search's target, relative to random search,
    against the start-up cost; one line per number of epochs, with 95%
    intervals. ``saving`` comes from ``hpo.sim.saving_sweep``."""
    from d2l import torch as d2l
    d2l.set_figsize((4.5, 3))
    ax = d2l.plt.gca()
    for i, (epochs, rows) in enumerate(saving.groupby('epochs')):
        ax.errorbar(rows['startup'], rows['ratio'],
                    yerr=[rows['ratio'] - rows['low'],
                          rows['high'] - rows['ratio']],
                    marker='o', capsize=3, color=f'C{i}',
                    label=f'r_max = {epochs} epochs')
    ax.axhline(1.0, color='gray', linestyle=':', linewidth=1)
    ax.set_xlabel('start-up cost per trial (s)')
    ax.set_ylabel('ASHA time / random search time')
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
    return ax


def plot_nodes(trials):
    """Gantt chart: which node ran which trial, and when."""
    from d2l import torch as d2l
    names = sorted(trials['node'].dropna().unique(),
                   key=lambda n: (n != 'head', n))
    rows = {n: i for i, n in enumerate(names)}
    d2l.set_figsize((6, 0.45 * len(names) + 1.0))
    ax = d2l.plt.gca()
    for _, t in trials.dropna(subset=['node']).iterrows():
        ax.barh(rows[t['node']], t['end'] - t['start'], left=t['start'],
                height=0.8, color=STATUS_COLORS[t['status']],
                edgecolor='white', linewidth=0.5)
    for status, color in STATUS_COLORS.items():
        if (trials['status'] == status).any():
            ax.barh([0], [0], color=color, label=status)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel('wall-clock time (s)')
    ax.legend(fontsize='small', ncol=5, loc='lower center',
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    return ax
