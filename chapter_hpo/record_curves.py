"""Record full learning curves for the simulator in :numref:`sec_sh_async`.

Runs random search with the CPU set-up of the chapter (LeNet-style network,
28x28 images, 20,000 training images, 8 epochs, 2 workers with one thread
each), trains every sampled configuration for all epochs, and writes one row
per (configuration, epoch) with the validation error and the seconds since
the trial's process started:

    .venv/bin/python chapter_hpo/record_curves.py [--n_configs 64]

This takes about 15 minutes on an otherwise idle 2-core machine and
rewrites ``curves_lenet.csv`` beside this file (the committed table, 65
configurations, took 15.5 minutes); the section replays the table in Syne
Tune's simulator. The first line of the file says when and how it was
recorded. Elapsed times depend on the machine and on whatever else runs
on it while recording.
"""
import argparse
import datetime
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / 'curves_lenet.csv'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n_configs', type=int, default=64)
    p.add_argument('--n_workers', type=int, default=2)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--output', type=Path, default=OUTPUT)
    args = p.parse_args()
    os.environ['OMP_NUM_THREADS'] = '1'
    os.environ.setdefault('SYNETUNE_FOLDER',
                          tempfile.mkdtemp(prefix='record-curves-'))
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.experiments import load_experiment
    from syne_tune.optimizer.baselines import RandomSearch
    from syne_tune.tuner_logger import TunerLogger

    import hpo_utils
    setup = hpo_utils.choose_setup('full')
    if setup.name != 'CPU':
        raise SystemExit('record_curves.py records the CPU set-up; hide '
                         'the GPUs with CUDA_VISIBLE_DEVICES=""')
    np.random.seed(args.seed)  # RandomSearch also draws from numpy's RNG
    config_space = dict(hpo_utils.search_space(), **setup.constants)
    scheduler = RandomSearch(config_space, metrics=['validation_error'],
                             do_minimize=True, random_seed=args.seed)
    tuner = Tuner(
        trial_backend=LocalBackend(
            entry_point=str(hpo_utils.ROOT /
                            'train_script_report_eachepoch.py')),
        scheduler=scheduler, n_workers=args.n_workers, sleep_time=0.5,
        stop_criterion=StoppingCriterion(
            max_num_trials_completed=args.n_configs),
        max_failures=args.n_configs,
        output_logger=TunerLogger(use_colors=False, use_emojis=False))
    tuner.run()
    df = load_experiment(tuner.name).results
    n_epochs = setup.constants['max_epochs']
    complete = df.groupby('trial_id')['epoch'].transform('max') == n_epochs
    diverged = df.groupby('trial_id')['test_error'].transform(
        lambda s: s.notna().any())  # the last report holds test_error
    table = df[complete | diverged].rename(
        columns=lambda c: c.replace('config_', ''))
    table = table[['trial_id', 'learning_rate', 'momentum', 'batch_size',
                   'epoch', 'validation_error', 'elapsed_time',
                   'test_error']].sort_values(['trial_id', 'epoch'])
    with open(args.output, 'w') as f:
        f.write(f'# recorded by record_curves.py on '
                f'{datetime.date.today()}, {platform.processor() or "CPU"}'
                f' with {os.cpu_count()} cores, {args.n_workers} trials at '
                f'a time, seed {args.seed}\n')
        table.to_csv(f, index=False, float_format='%.6g')
    print(f'wrote {table.trial_id.nunique()} configurations to '
          f'{args.output}')


if __name__ == '__main__':
    main()
