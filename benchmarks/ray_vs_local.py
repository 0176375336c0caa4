"""Ray Tune on a local Ray cluster against Syne Tune's LocalBackend.

    .venv/bin/python benchmarks/ray_vs_local.py [--quick] [--write]

Measures on this machine, with 2 workers (one Ray node each):

* the start-up time of a local cluster of two Ray nodes;
* busy fraction and overhead per trial (from the tuner starting a trial
  to its first training step) when every trial runs the same fixed number
  of epochs (random search, no early stopping): under Ray Tune with
  reused worker processes, under Ray Tune with a new actor per trial,
  and under Syne Tune's ``LocalBackend``, for the same time, with the
  same seed (the two libraries draw different configurations);
* a few runs of Ray Tune's ASHA and Syne Tune's ASHA in the chapter's CPU
  set-up (27 epochs, eta 3) with the same time budget: trials, epochs,
  best validation error and its test error.

Prints a table; ``--write`` puts it into ``benchmarks/results.md`` (in
its own section, replacing an earlier one), with the machine's load
average before and after, since other load changes every timing here.
About 25 minutes on 2 cores, 8 with ``--quick``.
"""
import argparse
import atexit
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'chapter_hpo'))
TITLE = 'Ray Tune and Syne Tune (benchmarks/ray_vs_local.py)'

import hpo_ray  # noqa: E402
import hpo_utils  # noqa: E402
from benchmarks import results_block  # noqa: E402


def ray_run(space, seconds, max_t, grace, eta, reuse, seed, nodes,
            storage):
    """One Ray Tune run on the connected cluster; its trial table."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator
    name = f'bench-{hpo_ray.time_stamp()}-{seed}-{int(reuse)}'
    events = Path(storage) / f'{name}-events.jsonl'
    scheduler = hpo_ray.RecordingASHA(
        str(events), time_attr='epoch', metric='validation_error',
        mode='min', max_t=max_t, grace_period=grace, reduction_factor=eta)
    tuner = tune.Tuner(
        tune.with_resources(hpo_ray.train_fn, {'cpu': 1}),
        param_space=hpo_ray.ray_search_space(space),
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=-1, time_budget_s=seconds,
            reuse_actors=reuse, search_alg=BasicVariantGenerator(
                random_state=seed, max_concurrent=2)),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=0,
            log_to_file=True,
            failure_config=tune.FailureConfig(max_failures=0)))
    grid = tuner.fit()
    trials = hpo_ray.trial_table(grid, events, nodes)
    return trials, trials['pid'].nunique()


def syne_run(space, seconds, max_t, eta, asha, seed, storage):
    """One Syne Tune run with LocalBackend, as the sections make it, on 2
    workers of one thread (the Ray cluster's two nodes); its trials."""
    import dataclasses
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    np.random.seed(seed)
    if asha:
        scheduler = ASHA(space, metric='validation_error',
                         time_attr='epoch', max_t=max_t, grace_period=1,
                         reduction_factor=eta, do_minimize=True,
                         random_seed=seed)
    else:
        scheduler = RandomSearch(space, metrics=['validation_error'],
                                 do_minimize=True, random_seed=seed)
    setup = dataclasses.replace(hpo_utils.choose_setup('full', n_gpus=0),
                                n_workers=2, threads_per_trial=1)
    exp = hpo_utils.run_experiment(
        scheduler, 'train_script_report_eachepoch.py', seconds, setup,
        storage)
    trials = hpo_utils.trial_table(exp)
    trials['overhead'] = hpo_ray.local_overheads(exp, trials)
    return trials, len(trials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='shorter runs, one ASHA run per library')
    parser.add_argument('--write', action='store_true',
                        help='write the table into benchmarks/results.md')
    opts = parser.parse_args()
    os.environ['OMP_NUM_THREADS'] = '1'
    fixed_seconds, asha_seconds, asha_seeds, fixed_epochs = (
        (60, 120, [0], 2) if opts.quick else (120, 240, [0, 1], 2))
    load_before = os.getloadavg()
    began = time.time()
    rows = []
    storage = Path(tempfile.mkdtemp(prefix='ray-vs-local-'))
    atexit.register(shutil.rmtree, storage, ignore_errors=True)
    cluster = hpo_ray.RayCluster(n_nodes=2, cpus_per_node=1)
    with cluster:
        rows.append(('cluster', 'start-up of 2 local Ray nodes',
                     f'{cluster.startup_seconds:.1f} s'))
        nodes = cluster.nodes()
        cpu = dict(hpo_utils.CPU_CONSTANTS)
        fixed = dict(hpo_utils.search_space(), **dict(
            cpu, max_epochs=fixed_epochs))
        runs = {
            'Ray Tune, reused processes': lambda: ray_run(
                fixed, fixed_seconds, fixed_epochs, fixed_epochs, 3, True,
                0, nodes, storage),
            'Ray Tune, new actor per trial': lambda: ray_run(
                fixed, fixed_seconds, fixed_epochs, fixed_epochs, 3, False,
                0, nodes, storage),
            'Syne Tune, LocalBackend': lambda: syne_run(
                fixed, fixed_seconds, fixed_epochs, 3, False, 0, storage)}
        for label, run in runs.items():
            trials, procs = run()
            done = trials[trials['status'] == 'completed']
            busy = hpo_utils.busy_fraction(trials, 2, trials['end'].max())
            what = (f'{fixed_epochs} epochs per trial, {fixed_seconds} s: '
                    f'{label}')
            rows += [
                ('overhead', f'{what}: trials completed (processes)',
                 f'{len(done)} ({procs})'),
                ('overhead', f'{what}: busy fraction', f'{100 * busy:.1f}%'),
                ('overhead', f'{what}: overhead per trial, median (max)',
                 f'{trials["overhead"].median():.2f} s '
                 f'({trials["overhead"].max():.2f} s)')]
        space = dict(hpo_utils.search_space(), **cpu)
        max_t = cpu['max_epochs']
        for seed in asha_seeds:
            for label, run in (
                    ('Ray Tune ASHA', lambda: ray_run(
                        space, asha_seconds, max_t, 1, 3, True, seed,
                        nodes, storage)),
                    ('Syne Tune ASHA', lambda: syne_run(
                        space, asha_seconds, max_t, 3, True, seed,
                        storage))):
                trials, procs = run()
                side = hpo_ray.summarize(trials, 2, [1, 3, 9], procs)
                rows.append((
                    'ASHA', f'{label}, CPU set-up, {asha_seconds} s, seed '
                    f'{seed}: trials, epochs, best val. (test) error',
                    f'{side["trials started"]}, {side["epochs trained"]}, '
                    f'{side["best validation error"]} '
                    f'({side["its test error"]})'))
    left = len(cluster.leftovers())
    rows.append(('cluster', 'Ray processes left after shutdown', str(left)))
    load_after = os.getloadavg()
    minutes = (time.time() - began) / 60
    description = (
        f'Made by `python benchmarks/ray_vs_local.py'
        f'{" --quick" if opts.quick else ""}` on '
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
