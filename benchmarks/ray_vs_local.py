"""Ray Tune on a local Ray cluster against Syne Tune's LocalBackend.

    .venv/bin/python benchmarks/ray_vs_local.py [--quick|--smoke] [--write]

Measures on this machine, with 2 workers (one Ray node each), every run
on the same list of configurations, drawn once with a seed
(``hpo.ray_tuning.draw_configurations``; ASHA: one list per seed), so that runs
differ only in the scheduler and in how trials are started:

* the start-up time of a local cluster of two Ray nodes;
* busy fraction and overhead per trial (from the tuner starting a trial
  to its first training step) when every trial runs the same fixed number
  of epochs (no early stopping): under Ray Tune with reused worker
  processes, under Ray Tune with a new actor per trial, and under Syne
  Tune's ``LocalBackend``, for the same time;
* ASHA in the chapter's CPU set-up (27 epochs, eta 3), the same three
  ways, with the same time budget: trials, processes, epochs, best
  validation error and its test error, and, with both rules recomputed
  on the run's own reports (``asha_rules``), how many trials each rule
  stops early and how many stops only one of them makes.

Prints a table; ``--write`` puts it into ``benchmarks/results.md`` (in
its own section, replacing an earlier one), with the machine's load
average before and after, since other load changes every timing here.
About 32 minutes on 2 cores, 11 with ``--quick``, 5 with ``--smoke``.
"""
import argparse
import atexit
import datetime
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks import results_block
from hpo.sim import rung_levels_formula
import hpo.asha_rules
import hpo.ray_tuning
import hpo.setups
import hpo.trials
import hpo.tuner


ROOT = Path(__file__).resolve().parent.parent
TITLE = 'Ray Tune and Syne Tune (benchmarks/ray_vs_local.py)'


# configurations drawn for each list: more than any run here starts
N_CONFIGS = 1000


def ray_run(space, configs, seconds, max_t, grace, eta, reuse, nodes,
            storage):
    """One Ray Tune run of ``configs`` on the connected cluster: its trial
    table, worker processes, and both rules on its reports."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator
    name = f'bench-{hpo.ray_tuning.time_stamp()}-{int(reuse)}'
    events = Path(storage) / f'{name}-events.jsonl'
    scheduler = hpo.ray_tuning.RecordingASHA(
        str(events), time_attr='epoch', metric='validation_error',
        mode='min', max_t=max_t, grace_period=grace, reduction_factor=eta)
    tuner = tune.Tuner(
        tune.with_resources(hpo.ray_tuning.train_fn, {'cpu': 1}),
        param_space=hpo.ray_tuning.ray_search_space(space),
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=len(configs),
            time_budget_s=seconds, reuse_actors=reuse,
            search_alg=BasicVariantGenerator(
                points_to_evaluate=configs, max_concurrent=2)),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=0,
            log_to_file=True,
            failure_config=tune.FailureConfig(max_failures=0)))
    grid = tuner.fit()
    trials = hpo.ray_tuning.trial_table(grid, events, nodes)
    hpo.ray_tuning.configurations_run(trials, configs)  # raises if not
    rules = hpo.ray_tuning.decision_check(events, max_t, grace, eta)
    return trials, trials['pid'].nunique(), rules


def syne_run(space, configs, seconds, max_t, eta, asha, storage):
    """One Syne Tune run of ``configs`` with LocalBackend, as the sections
    make it, on 2 workers of one thread (the Ray cluster's two nodes):
    its trials, processes, and both rules on its reports (ASHA only)."""
    import dataclasses
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    if asha:
        scheduler = ASHA(space, metric='validation_error',
                         time_attr='epoch', max_t=max_t, grace_period=1,
                         reduction_factor=eta, do_minimize=True,
                         random_seed=0, points_to_evaluate=configs)
    else:
        scheduler = RandomSearch(space, metrics=['validation_error'],
                                 do_minimize=True, random_seed=0,
                                 points_to_evaluate=configs)
    setup = dataclasses.replace(hpo.setups.choose_setup('full', n_gpus=0),
                                n_workers=2, threads_per_trial=1)
    exp = hpo.tuner.run_experiment(
        scheduler, 'train_script_report_eachepoch.py', seconds, setup,
        storage)
    trials = hpo.trials.trial_table(exp)
    hpo.ray_tuning.configurations_run(trials, configs)  # raises if not
    trials['overhead'] = hpo.ray_tuning.local_overheads(exp, trials)
    rules = None
    if asha:
        levels = rung_levels_formula(1, eta, max_t)
        reports = exp.results.rename(columns={'validation_error': 'error'})
        rules = hpo.asha_rules.both_rules(reports, levels, max_t, eta)
    return trials, len(trials), rules


def fixed_rows(runs, seconds, epochs):
    """Table rows for the runs without early stopping."""
    rows = []
    for label, run in runs.items():
        trials, procs, _ = run()
        done = trials[trials['status'] == 'completed']
        busy = hpo.trials.busy_fraction(trials, 2, trials['end'].max())
        what = f'{epochs} epochs per trial, {seconds} s: {label}'
        rows += [
            ('overhead', f'{what}: trials completed (processes)',
             f'{len(done)} ({procs})'),
            ('overhead', f'{what}: busy fraction', f'{100 * busy:.1f}%'),
            ('overhead', f'{what}: overhead per trial, median (max)',
             f'{trials["overhead"].median():.2f} s '
             f'({trials["overhead"].max():.2f} s)')]
    return rows


def asha_rows(label, trials, procs, rules, max_t):
    """Table rows for one ASHA run: what it did, and the two rules."""
    side = hpo.ray_tuning.summarize(
        trials, 2, rung_levels_formula(1, 3, max_t), procs)
    counts = hpo.asha_rules.disagreements(rules, max_t)
    return [
        ('ASHA', f'{label}: trials (processes), epochs, best val. (test) '
         'error', f'{side["trials started"]} ({procs}), '
         f'{side["epochs trained"]}, {side["best validation error"]} '
         f'({side["its test error"]})'),
        ('ASHA', f'{label}: stops before epoch {max_t} by Ray\'s rule, '
         'by Syne Tune\'s; stopped by Ray\'s only, by Syne Tune\'s only '
         '(both recomputed on its reports)',
         f'{counts["Ray Tune stops"]}, {counts["Syne Tune stops"]}; '
         f'{counts["stopped by Ray Tune, continued by Syne Tune"]}, '
         f'{counts["stopped by Syne Tune, continued by Ray Tune"]}')]


SIZES = {'full': (120, 240, [0, 1]), 'quick': (60, 120, [0]),
         'smoke': (20, 40, [0])}


def measure(fixed_seconds, asha_seconds, asha_seeds, fixed_epochs=2):
    """Every run of the benchmark on one local cluster; the table rows."""
    storage = Path(tempfile.mkdtemp(prefix='ray-vs-local-'))
    atexit.register(shutil.rmtree, storage, ignore_errors=True)
    cluster = hpo.ray_tuning.RayCluster(n_nodes=2, cpus_per_node=1)
    with cluster:
        rows = [('cluster', 'start-up of 2 local Ray nodes',
                 f'{cluster.startup_seconds:.1f} s')]
        nodes = cluster.nodes()
        cpu = dict(hpo.setups.CPU_CONSTANTS)
        fixed = dict(hpo.tuner.search_space(), **dict(
            cpu, max_epochs=fixed_epochs))
        configs = hpo.ray_tuning.draw_configurations(fixed, N_CONFIGS, 0)
        rows += fixed_rows({
            'Ray Tune, reused processes': lambda: ray_run(
                fixed, configs, fixed_seconds, fixed_epochs, fixed_epochs,
                3, True, nodes, storage),
            'Ray Tune, new actor per trial': lambda: ray_run(
                fixed, configs, fixed_seconds, fixed_epochs, fixed_epochs,
                3, False, nodes, storage),
            'Syne Tune, LocalBackend': lambda: syne_run(
                fixed, configs, fixed_seconds, fixed_epochs, 3, False,
                storage)}, fixed_seconds, fixed_epochs)
        space = dict(hpo.tuner.search_space(), **cpu)
        for seed in asha_seeds:
            rows += asha_runs(space, seed, asha_seconds, nodes, storage)
    rows.append(('cluster', 'Ray processes left after shutdown',
                 str(len(cluster.leftovers()))))
    return rows


def asha_runs(space, seed, seconds, nodes, storage):
    """Ray Tune's ASHA with and without reused processes, and Syne Tune's
    ASHA, on the list of configurations drawn with ``seed``."""
    max_t = space['max_epochs']
    configs = hpo.ray_tuning.draw_configurations(space, N_CONFIGS, seed)
    what = f'CPU set-up, {seconds} s, list {seed}'
    runs = {'Ray Tune ASHA, reused processes': lambda: ray_run(
                space, configs, seconds, max_t, 1, 3, True, nodes, storage),
            'Ray Tune ASHA, new actor per trial': lambda: ray_run(
                space, configs, seconds, max_t, 1, 3, False, nodes,
                storage),
            'Syne Tune ASHA': lambda: syne_run(
                space, configs, seconds, max_t, 3, True, storage)}
    rows = []
    for label, run in runs.items():
        rows += asha_rows(f'{label}, {what}', *run(), max_t)
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
    os.environ['OMP_NUM_THREADS'] = '1'
    load_before = os.getloadavg()
    began = time.time()
    rows = measure(*SIZES[size])
    load_after = os.getloadavg()
    minutes = (time.time() - began) / 60
    flag = {'full': '', 'quick': ' --quick', 'smoke': ' --smoke'}[size]
    description = (
        f'Made by `python benchmarks/ray_vs_local.py{flag}` on '
        f'{datetime.date.today()} in {minutes:.0f} minutes; load '
        f'average (1 min) {load_before[0]:.1f} before, '
        f'{load_after[0]:.1f} after, on {os.cpu_count()} cores '
        '(a load above the number of cores means other work shared '
        'the machine and every time here is inflated).')
    print(description, *results_block.table(rows), sep='\n')
    if opts.write:
        results_block.write('ray_vs_local', TITLE, description, rows)


if __name__ == '__main__':
    main()
