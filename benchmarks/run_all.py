"""The chapter's benchmark suite: one command, one table, one results file.

    .venv/bin/python -m benchmarks.run_all [--quick] [--skip PART ...]

Measures on this machine, in the chapter's CPU set-up (parts in brackets):

* [throughput] seconds per epoch and images per second of both training
  scripts next to the compute bound (``benchmarks/throughput.py``);
* [startup] a trial's start-up by phase (``benchmarks/startup.py``);
* [tuner] real ``LocalBackend`` runs of random search and of ASHA: the
  fraction of worker time spent in trials, the gap between one trial's end
  and the next start on a worker, and the epochs a trial ran after the
  scheduler decided to stop it;
* [sections] wall time of each section run end to end as a notebook, in
  the test budget (``HPO_BUDGET=test``) and, unless ``--quick``, in the
  CPU set-up; or, with ``--sections-log LOG``, the times d2lbook printed
  for each section in a book build whose output was saved to ``LOG``
  (``bash run.sh book > LOG 2>&1``), which saves running them twice;
* [simulation] from the simulator, over 50 seeds, as ``sh-async`` runs it:
  the recorded table's size; each method's time to deliver random
  search's median error after 8 minutes (from other seeds), with its
  paired ratio to random search's and the share of seeds in which it was
  first, both with 95% bootstrap intervals; the same ratio for 9 and 27
  epochs and three start-up costs; the speed-up of random search for 1 to
  32 workers;
* [book] book build time (HTML, test budget) cold and with the evaluated
  notebooks cached, in a scratch copy of the repository.

Prints the table and writes it, with a description of the machine, to
``benchmarks/results.md`` (committed; rerun it when the code changes).
The whole suite takes about 35 minutes on 2 cores, 10 with ``--quick``.
No part of it asserts anything: the numbers are for people to compare.
"""
import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks.results_block import RESULTS, machine


ROOT = Path(__file__).resolve().parent.parent

CHAPTER = ROOT / 'chapter_hpo'
PARTS = ('throughput', 'startup', 'tuner', 'sections', 'simulation',
         'book')


def part_throughput(rows):
    from benchmarks import throughput
    scripts, bound, teardown = throughput.main([])
    rows.append(('throughput', 'AlexNet 224x224, all cores, min/epoch '
                 '(estimate)',
                 f'{teardown.pop("alexnet_minutes_per_epoch"):.0f}'))
    for how, t in teardown.items():
        rows.append(('throughput', f'process exit after last output, {how}',
                     f'{t:.2f} s'))
    rows.append(('throughput', 'compute bound, s/epoch', f'{bound:.2f}'))
    for script, r in scripts.items():
        t = r['seconds_per_epoch']
        n = throughput.SETUP['n_train']
        rows.append(('throughput', f'{script}, s/epoch of {n} images '
                     '(img/s)', f'{t:.2f} ({n / t:.0f})'))
        rows.append(('throughput', f'{script}, share of bound',
                     f'{100 * bound / t:.0f}%'))


def tuner_run(method, seconds, folder):
    """A real experiment in the CPU set-up; return (exp, trials, setup)."""
    import hpo.setups
    import hpo.trials
    import hpo.tuner
    from syne_tune.optimizer.baselines import ASHA, RandomSearch
    setup = hpo.setups.choose_setup('full', n_gpus=0)
    np.random.seed(0)
    space = dict(hpo.tuner.search_space(), **setup.constants)
    epochs = setup.constants['max_epochs']
    if method == 'random search':
        scheduler = RandomSearch(space, metrics=['validation_error'],
                                 do_minimize=True, random_seed=0)
        script = 'train_script.py'
    else:
        scheduler = ASHA(space, metric='validation_error',
                         time_attr='epoch', max_t=epochs, grace_period=1,
                         reduction_factor=3, do_minimize=True,
                         random_seed=0)
        script = 'train_script_report_eachepoch.py'
    exp = hpo.tuner.run_experiment(scheduler, script, seconds, setup, folder)
    return exp, hpo.trials.trial_table(exp), setup


def part_tuner(rows, seconds):
    import hpo.trials
    with tempfile.TemporaryDirectory() as folder:
        for method in ('random search', 'ASHA'):
            exp, trials, setup = tuner_run(method, seconds, folder)
            workers = hpo.trials.assign_workers(trials, setup.n_workers)
            busy = hpo.trials.busy_fraction(trials, setup.n_workers)
            gaps = hpo.trials.idle_gaps(trials, workers)
            rows.append(('tuner', f'{method}: trials in {seconds} s',
                         str(len(trials))))
            rows.append(('tuner', f'{method}: busy fraction',
                         f'{100 * busy:.1f}%'))
            rows.append(('tuner', f'{method}: gap end->next start, '
                         'median (max)',
                         f'{np.median(gaps):.2f} s ({gaps.max():.2f} s)'))
            if method == 'ASHA':
                extra = hpo.trials.epochs_after_stop(exp, trials)
                rows.append(('tuner', 'ASHA: epochs run after the stop '
                             'decision, max (mean)',
                             f'{extra.max()} ({extra.mean():.2f}) over '
                             f'{len(extra)} stopped trials'))


def run_notebook(name, budget):
    """Execute a section's markdown as a notebook; return its seconds.

    The executed notebook is kept in ``_build/benchmarks/`` for a look at
    its outputs.
    """
    import nbclient
    import nbformat
    from d2lbook.notebook import read_markdown
    src = ROOT / 'chapter_hpo' / f'{name}.md'
    nb = read_markdown(src.read_text())
    folder = tempfile.mkdtemp(prefix='bench-nb-')
    try:
        with mock.patch.dict(os.environ, HPO_BUDGET=budget,
                             SYNETUNE_FOLDER=folder):
            tik = time.monotonic()
            nbclient.NotebookClient(
                nb, timeout=1800, kernel_name='python3',
                resources={'metadata': {'path': str(src.parent)}}).execute()
        seconds = time.monotonic() - tik
        out = ROOT / '_build' / 'benchmarks'
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / f'{name}-{budget}.ipynb')
        return seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SECTIONS = ('rs-async', 'sh-async', 'hpo-ray')


def part_sections(rows, quick):
    for budget in (('test',) if quick else ('test', 'full')):
        for name in SECTIONS:
            seconds = run_notebook(name, budget)
            rows.append(('sections', f'{name}, budget "{budget}"',
                         f'{seconds:.0f} s'))


EVALUATED = re.compile(r'Task "Evaluating \./chapter_hpo/([\w-]+)\.md" .* '
                       r'is finished in (\d+):(\d\d):(\d\d)')


def sections_from_log(rows, log):
    """Each section's time as a book build's log says (the output of
    ``bash run.sh book``, where d2lbook times every notebook it runs)."""
    budget = 'test' if 'HPO_BUDGET=test' in log else 'full'
    found = {m.group(1): m.groups()[1:] for m in EVALUATED.finditer(log)}
    for name in SECTIONS:
        if name in found:
            h, m, s = map(int, found[name])
            rows.append(('sections', f'{name}, budget "{budget}", in the '
                         'book build', f'{3600 * h + 60 * m + s} s'))


def part_startup(rows):
    from benchmarks.startup import startup_phases
    phases = startup_phases()
    rows.append(('startup', 'trial start-up by phase, median of 5 '
                 'processes (CPU set-up, 1 thread)',
                 ', '.join(f'{k} {v:.2f} s' for k, v in phases.items())))


def part_simulation(rows, n_seeds, cache_dir=CHAPTER):
    """Methods compared on the recorded table, with 95% intervals: the
    same calls, with the same parameters, as in sh-async.md, so that the
    numbers agree (the cached tables are the ones the notebook reads)."""
    import hpo.sim
    import hpo.stats
    curves = hpo.sim.load_curves()
    last = curves.groupby('config_id').last()
    size = hpo.sim.CURVES.stat().st_size
    rows.append(('simulation', f'recorded table {hpo.sim.CURVES.name}',
                 f'{len(last)} configurations x {curves.epoch.max()} '
                 f'epochs, {size / 1e6:.2f} MB; trials\' CPU time '
                 f'{last.cpu_time.sum() / 60:.0f} min (recording with 2 '
                 f'at a time: {last.cpu_time.sum() / 120:.0f} min on an '
                 'idle machine)'))
    budget, seeds = 480, range(n_seeds)
    runs = hpo.sim.run_many(list(hpo.sim.METHODS), seeds, curves,
                            n_workers=2, max_wallclock_time=2 * budget)
    target = hpo.stats.target_error(hpo.sim.run_many(
        ['random search'], hpo.sim.heldout(seeds), curves, n_workers=2,
        max_wallclock_time=budget), budget)
    table = hpo.stats.paired_comparison(
        hpo.stats.times_to_target(runs, target), 2 * budget)
    for method, r in table.iterrows():
        rows.append((
            'simulation', f'{method}: time to RS\'s {budget} s median '
            f'delivered error {target:.4f} (held-out seeds), {n_seeds} '
            'seeds, 2 workers: median (censored at 960 s), paired ratio '
            'to RS, share first, share reached',
            f'{r.median_time:.0f} s; {r.ratio:.2f} [{r.low:.2f}, '
            f'{r.high:.2f}]; {r.first:.2f} [{r.first_low:.2f}, '
            f'{r.first_high:.2f}]; {r.reached:.2f}'))
    startup = float(curves.loc[curves.epoch == 1,
                               'startup_cpu_time'].median())
    n_epochs = int(curves['epoch'].max())
    saving = hpo.sim.cached(
        cache_dir / 'sim_saving.csv', hpo.sim.saving_sweep, curves=curves,
        startups=[0.0, startup, 2 * startup],
        epoch_budgets=[n_epochs // 3, n_epochs], seeds=seeds,
        max_wallclock_time=budget)
    for _, r in saving.iterrows():
        rows.append(('simulation', f'ASHA / RS time, r_max {r.epochs:g}, '
                     f'start-up {r.startup:.1f} s',
                     f'{r.ratio:.2f} [{r.low:.2f}, {r.high:.2f}]'))
    speedup = hpo.sim.cached(cache_dir / 'sim_speedup.csv',
                             hpo.sim.speedup, curves=curves, seeds=seeds)
    for k, r in speedup.iterrows():
        rows.append(('simulation', f'random search speed-up, {k} workers '
                     '(recorded clock for every K)',
                     f'{r.speedup:.2f} [{r.low:.2f}, {r.high:.2f}] '
                     f'({r.efficiency:.2f} K)'))


def part_book(rows):
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / 'book'
        files = subprocess.run(['git', 'ls-files'], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout
        for f in files.split():
            (copy / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, copy / f)
        env = dict(os.environ, HPO_BUDGET='test',
                   HPO_DATA_DIR=str(ROOT / 'data'),
                   SYNETUNE_FOLDER=str(Path(tmp) / 'experiments'))
        for what in ('cold', 'cached'):
            tik = time.monotonic()
            subprocess.run([sys.executable, '-m', 'tools.build_book',
                            '--html-only'], cwd=copy, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            rows.append(('book', f'HTML build, test budget, {what}',
                         f'{time.monotonic() - tik:.0f} s'))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true',
                   help='sections in the test budget only, 20 seeds, '
                        '60 s tuner runs')
    p.add_argument('--skip', nargs='*', default=[], choices=PARTS)
    p.add_argument('--sections-log', type=Path, metavar='LOG',
                   help='instead of running the sections, take their '
                        'times from the saved output of `bash run.sh '
                        'book`')
    args = p.parse_args()
    rows, started = [], time.monotonic()
    parts = [part for part in PARTS if part not in args.skip]
    for part in parts:
        print(f'[run_all] {part} ...', flush=True)
        if part == 'throughput':
            part_throughput(rows)
        elif part == 'startup':
            part_startup(rows)
        elif part == 'tuner':
            part_tuner(rows, 60 if args.quick else 180)
        elif part == 'sections' and args.sections_log:
            sections_from_log(rows, args.sections_log.read_text())
        elif part == 'sections':
            part_sections(rows, args.quick)
        elif part == 'simulation' and args.quick:  # not the book's caches
            with tempfile.TemporaryDirectory() as folder:
                part_simulation(rows, 20, Path(folder))
        elif part == 'simulation':
            part_simulation(rows, 50)
        else:
            part_book(rows)
    old_rows, old_made = previous_rows(RESULTS)
    kept = [row for row in old_rows if row[0] not in parts]
    lines = ['# Benchmark results\n',
             f'Made by `python -m benchmarks.run_all'
             f'{" --quick" if args.quick else ""}'
             f'{" --skip " + " ".join(args.skip) if args.skip else ""}'
             f'{" --sections-log LOG" if args.sections_log else ""}` '
             f'on {datetime.date.today()} in '
             f'{(time.monotonic() - started) / 60:.0f} minutes.\n',
             f'Machine: {machine()}.\n']
    if kept:
        lines.append(f'Kept from the earlier file, made on {old_made}: '
                     f'the rows of {", ".join(sorted({r[0] for r in kept}))}'
                     '.\n')
    lines += ['| part | measure | value |', '|---|---|---|']
    order = {part: i for i, part in enumerate(PARTS)}
    all_rows = sorted(kept + rows, key=lambda r: order.get(r[0], 99))
    lines += [f'| {a} | {b} | {c} |' for a, b, c in all_rows]
    text = '\n'.join(lines) + '\n'
    print('\n' + text)
    RESULTS.write_text(with_head(RESULTS, text))
    print(f'[run_all] wrote {RESULTS.relative_to(ROOT)}')


def previous_rows(path):
    """The rows of run_all's table in ``path``, and when (and on which
    machine) it was made."""
    if not path.exists():
        return [], ''
    head = path.read_text().split('\n## ', 1)[0].split('<!--', 1)[0]
    made = re.search(r'^Made by .* on (\d{4}-\d\d-\d\d)', head, re.M)
    machine_line = re.search(r'^Machine: (.*)\.$', head, re.M)
    rows = [tuple(cell.strip() for cell in line.strip('|').split(' | '))
            for line in head.splitlines()
            if line.startswith('| ') and not line.startswith('| part |')]
    return ([row for row in rows if len(row) == 3],
            (made.group(1) if made else 'an unknown date')
            + (f' ({machine_line.group(1)})' if machine_line else ''))


def with_head(path, head):
    """``path``'s text with run_all's part (up to the first section of
    another benchmark: the GPU block, the Ray section) replaced."""
    text = path.read_text() if path.exists() else ''
    cuts = [i for i in (text.find('<!--'), text.find('\n## '))
            if i >= 0]
    rest = text[min(cuts):].lstrip('\n') if cuts else ''
    return head + ('\n' + rest if rest else '')


if __name__ == '__main__':
    main()
