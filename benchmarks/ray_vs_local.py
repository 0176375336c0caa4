"""Ray Tune on a local Ray cluster against Syne Tune's LocalBackend.

    .venv/bin/python -m benchmarks.ray_vs_local [--quick|--smoke] [--write]

On 2 workers (a Ray node each), every run on one list of configurations
drawn with a seed, so that runs differ only in the scheduler and in how
trials start. Ray Tune reusing processes, Ray Tune with a new actor per
trial, and LocalBackend, for the same time: the overhead per trial (from
the tuner starting it to its first step) and the busy fraction, with a
fixed number of epochs; ASHA in the CPU set-up: trials, processes,
epochs, best errors, and both ASHA rules recomputed on its reports.
``--write`` puts the table into ``benchmarks/results.md``. About 32
minutes on 2 cores, 11 with ``--quick``, 5 with ``--smoke``.
"""
import argparse
import dataclasses
import datetime
import os
import tempfile
import time
from pathlib import Path

from benchmarks import common
import hpo.asha_rules
import hpo.ray_cluster
import hpo.ray_tuning
import hpo.setups
import hpo.sim
import hpo.trials
import hpo.tuner

TITLE = 'Ray Tune and Syne Tune (benchmarks/ray_vs_local.py)'
N_CONFIGS = 1000  # configurations in a list: more than any run starts
# seconds of the runs with a fixed number of epochs, of ASHA; ASHA seeds
SIZES = {'full': (120, 240, [0, 1]), 'quick': (60, 120, [0]),
         'smoke': (20, 40, [0])}
# reuse_actors (None: Syne Tune): the run's labels without, with ASHA
RUNS = {True: ('Ray Tune, reused processes',
               'Ray Tune ASHA, reused processes'),
        False: ('Ray Tune, new actor per trial',
                'Ray Tune ASHA, new actor per trial'),
        None: ('Syne Tune, LocalBackend', 'Syne Tune ASHA')}


def run(reuse, space, configs, seconds, asha, nodes, folder):
    """One run of ``configs``, with ASHA or without early stopping: its
    trials, worker processes, and both rules on its reports (ASHA only)."""
    max_t, grace = space['max_epochs'], 1 if asha else space['max_epochs']
    setup = dataclasses.replace(hpo.setups.choose_setup('full', n_gpus=0),
                                n_workers=2, threads_per_trial=1)
    rules = None
    if reuse is None:  # Syne Tune
        scheduler = hpo.sim.make_scheduler(
            'ASHA' if asha else 'random search', space, 0, max_t, configs)
        exp = hpo.tuner.run_experiment(
            scheduler, 'train_script_report_eachepoch.py', seconds, setup,
            folder)
        trials = hpo.trials.trial_table(exp)
        trials['overhead'] = hpo.ray_tuning.local_overheads(exp, trials)
        if asha:
            rules = hpo.asha_rules.both_rules(
                exp.results.rename(columns={'validation_error': 'error'}),
                hpo.sim.rung_levels_formula(1, 3, max_t), max_t, 3)
        procs = len(trials)
    else:
        events = folder / f'{hpo.ray_tuning.time_stamp()}-{reuse}.jsonl'
        scheduler = hpo.ray_tuning.RecordingASHA(
            events, time_attr='epoch', metric='validation_error',
            mode='min', max_t=max_t, grace_period=grace, reduction_factor=3)
        _, trials = hpo.ray_tuning.ray_experiment(
            scheduler, space, configs, seconds, setup, nodes, folder, reuse)
        if asha:
            rules = hpo.ray_tuning.decision_check(events, max_t, 1, 3)
        procs = trials['pid'].nunique()
    hpo.ray_tuning.configurations_run(trials, configs)  # raises if not
    return trials, procs, rules


def fixed_rows(label, trials, procs, seconds, epochs):
    """Table rows of a run without early stopping."""
    what = f'{epochs} epochs per trial, {seconds} s: {label}'
    busy = hpo.trials.busy_fraction(trials, 2)
    return [('overhead', f'{what}: trials completed (processes)',
             f'{(trials["status"] == "completed").sum()} ({procs})'),
            ('overhead', f'{what}: busy fraction', f'{100 * busy:.1f}%'),
            ('overhead', f'{what}: overhead per trial, median (max)',
             f'{trials["overhead"].median():.2f} s '
             f'({trials["overhead"].max():.2f} s)')]


def asha_rows(label, trials, procs, rules, max_t):
    """Table rows of an ASHA run: what it did, and the two rules."""
    s = hpo.ray_tuning.summarize({label: (trials, procs)}, 2, hpo.sim.
                                 rung_levels_formula(1, 3, max_t))[label]
    counts = hpo.asha_rules.disagreements(rules, max_t)
    return [
        ('ASHA', f'{label}: trials (processes), epochs, best val. (test) '
         'error', f'{s["trials"]} ({procs}), {s["epochs"]}, '
         f'{s["best_error"]} ({s["its_test_error"]})'),
        ('ASHA', f'{label}: stops before epoch {max_t} by Ray\'s rule, '
         'by Syne Tune\'s; stopped by Ray\'s only, by Syne Tune\'s only '
         '(both recomputed on its reports)',
         f'{counts["Ray Tune stops"]}, {counts["Syne Tune stops"]}; '
         f'{counts["stopped by Ray Tune, continued by Syne Tune"]}, '
         f'{counts["stopped by Syne Tune, continued by Ray Tune"]}')]


def measure(fixed_seconds, asha_seconds, asha_seeds, fixed_epochs=2):
    """Every run of the benchmark on one local cluster; the table rows."""
    cpu = dict(hpo.tuner.search_space(), **hpo.setups.CPU_CONSTANTS)
    fixed = dict(cpu, max_epochs=fixed_epochs)
    with tempfile.TemporaryDirectory(prefix='ray-vs-local-') as tmp, \
            hpo.ray_cluster.RayCluster(n_nodes=2) as cluster:
        rows = [('cluster', 'start-up of 2 local Ray nodes',
                 f'{cluster.startup_seconds:.1f} s')]
        nodes, folder = cluster.nodes(), Path(tmp)
        configs = hpo.ray_tuning.draw_configurations(fixed, N_CONFIGS, 0)
        for reuse, (label, _) in RUNS.items():
            trials, procs, _ = run(reuse, fixed, configs, fixed_seconds,
                                   False, nodes, folder)
            rows += fixed_rows(label, trials, procs, fixed_seconds,
                               fixed_epochs)
        for seed in asha_seeds:
            configs = hpo.ray_tuning.draw_configurations(cpu, N_CONFIGS, seed)
            for reuse, (_, label) in RUNS.items():
                rows += asha_rows(
                    f'{label}, CPU set-up, {asha_seconds} s, list {seed}',
                    *run(reuse, cpu, configs, asha_seconds, True, nodes,
                         folder), cpu['max_epochs'])
    rows.append(('cluster', 'Ray processes left after shutdown',
                 str(len(cluster.leftovers()))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='shorter runs, one ASHA seed')
    parser.add_argument('--smoke', action='store_true',
                        help='a few seconds per run: checks that the '
                        'script works; the numbers mean nothing')
    parser.add_argument('--write', action='store_true',
                        help='write the table into benchmarks/results.md')
    opts = parser.parse_args()
    size = 'smoke' if opts.smoke else 'quick' if opts.quick else 'full'
    load_before, began = os.getloadavg(), time.time()
    rows = measure(*SIZES[size])
    load_after = os.getloadavg()
    flag = '' if size == 'full' else f' --{size}'
    description = (
        f'Made by `python -m benchmarks.ray_vs_local{flag}` on '
        f'{datetime.date.today()} in {(time.time() - began) / 60:.0f} '
        f'minutes; load average (1 min) {load_before[0]:.1f} before, '
        f'{load_after[0]:.1f} after, on {os.cpu_count()} cores '
        '(a load above the number of cores means other work shared '
        'the machine and every time here is inflated).')
    print(description, *common.table(rows), sep='\n')
    if opts.write:
        common.write('ray_vs_local', TITLE, description, rows)


if __name__ == '__main__':
    main()
