"""The chapter's benchmark suite: one command, one block of results a part.

Each part of ``ABOUT`` measured here (all but those given to ``--skip``)
becomes its block of ``benchmarks/results.md``; the others are kept. The
sections' times come from the log of a book build (``--sections-log``).
Nothing is asserted.
"""
import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common, throughput
import hpo.setups
import hpo.sim
import hpo.stats
import hpo.trials
import hpo.tuner

ROOT = common.ROOT
SECTIONS = ('rs-async', 'sh-async', 'hpo-ray')
EVALUATED = re.compile(r'Task "Evaluating \./chapter_hpo/([\w-]+)\.md" .* '
                       r'is finished in (\d+):(\d\d):(\d\d)')
ABOUT = {  # part: (title, what it measures), the intro of its block
    'throughput': ('The training scripts as processes (CPU set-up)',
                   'Throughput next to the compute bound, AlexNet\'s epoch '
                   'on this CPU (an estimate), exit and start-up times '
                   '(`python -m benchmarks.throughput`).'),
    'tuner': ('Real tuning runs (CPU set-up)', 'Random search and ASHA by '
              '`hpo.tuner.run_experiment`: trials, the workers\' busy '
              'fraction, the gap from a trial\'s end to the next start on '
              'its worker, the epochs run after a stop decision.'),
    'sections': ('Sections run end to end', 'Each section\'s wall time as '
                 'd2lbook timed it in a book build.'),
    'simulation': ('Simulated comparisons', 'The simulator\'s results with '
                   'the calls and parameters of sh-async, on its recorded '
                   'table and cached tables; 95% bootstrap intervals.'),
}


def part_tuner(args):
    setup = hpo.setups.choose_setup('full', n_gpus=0)
    space = dict(hpo.tuner.search_space(), **setup.constants)
    seconds, rows = 60 if args.quick else 180, []
    for method, script in zip(('random search', 'ASHA'), common.SCRIPTS):
        np.random.seed(0)
        scheduler = hpo.sim.make_scheduler(
            method, space, 0, setup.constants['max_epochs'], points=None)
        with tempfile.TemporaryDirectory() as folder:
            exp = hpo.tuner.run_experiment(scheduler, script, seconds, setup,
                                           folder)
            trials = hpo.trials.trial_table(exp)
            extra = hpo.trials.epochs_after_stop(exp, trials)  # ASHA's
        workers = hpo.trials.assign_workers(trials, setup.n_workers)
        busy = hpo.trials.busy_fraction(trials, setup.n_workers)
        gaps = hpo.trials.idle_gaps(trials, workers)
        rows += [
            ('tuner', f'{method}: trials in {seconds} s', str(len(trials))),
            ('tuner', f'{method}: busy fraction', f'{100 * busy:.1f}%'),
            ('tuner', f'{method}: gap end->next start, median (max)',
             f'{np.median(gaps):.2f} s ({gaps.max():.2f} s)')]
    return rows + [('tuner', 'ASHA: epochs run after the stop decision, '
                    'max (mean)', f'{extra.max()} ({extra.mean():.2f}) over '
                    f'{len(extra)} stopped trials')]


def part_sections(args):
    """Each section's seconds in the book build logged in ``args``."""
    log = args.sections_log.read_text()
    budget = 'test' if 'HPO_BUDGET=test' in log else 'full'
    found = {m[1]: 3600 * int(m[2]) + 60 * int(m[3]) + int(m[4])
             for m in EVALUATED.finditer(log)}  # seconds by section
    if missing := [name for name in SECTIONS if name not in found]:
        raise SystemExit(f'[run_all] {args.sections_log} times no '
                         f'{", ".join(missing)}: d2lbook logs only the '
                         'notebooks it evaluates; build with an empty '
                         '_build/eval/')
    return [('sections', f'{name}, budget "{budget}", in the book build',
             f'{found[name]} s') for name in SECTIONS]


def part_simulation(args):
    setup = hpo.setups.choose_setup('test' if args.quick else 'full', n_gpus=0)
    curves_file = hpo.sim.curves_for(setup) or hpo.sim.CURVES
    curves = hpo.sim.load_curves(curves_file)
    last = curves.groupby('config_id').last()
    budget, seeds = setup.max_wallclock_time, range(setup.n_seeds)
    cpu = last.cpu_time.sum() / 60
    rows = [('simulation', f'recorded table {curves_file.name}',
             f'{len(last)} configurations x {curves.epoch.max()} epochs, '
             f'{curves_file.stat().st_size / 1e6:.2f} MB; trials\' CPU time '
             f'{cpu:.0f} min (recording with 2 at a time: {cpu / 2:.0f} min '
             'on an idle machine)')]
    target, times = hpo.sim.target_and_times(
        list(hpo.sim.METHODS), seeds, curves, max_wallclock_time=budget)
    table = hpo.stats.paired_comparison(times, 2 * budget)
    rows += [('simulation', f'{method}: time to RS\'s {budget:g} s median '
              f'delivered error {target:.4f} (held-out seeds), '
              f'{len(seeds)} seeds, 2 workers: median (censored at '
              f'{2 * budget:g} s), paired ratio to RS, share first, share '
              'reached', f'{r.median_time:.0f} s; {r.ratio:.2f} '
              f'[{r.low:.2f}, {r.high:.2f}]; {r.first:.2f} '
              f'[{r.first_low:.2f}, {r.first_high:.2f}]; {r.reached:.2f}')
             for method, r in table.iterrows()]
    # sh-async's two cached tables, by the same calls
    startup = float(curves.loc[curves.epoch == 1, 'startup_cpu_time'].median())
    n_epochs = int(curves['epoch'].max())
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) if args.quick else ROOT / 'chapter_hpo'
        saving = hpo.sim.cached(
            cache / 'sim_saving.csv', hpo.sim.saving_sweep, curves=curves,
            startups=[0.0, startup, 2 * startup],
            epoch_budgets=[n_epochs // 3, n_epochs], seeds=seeds,
            max_wallclock_time=budget)
        speedup = hpo.sim.cached(cache / 'sim_speedup.csv', hpo.sim.speedup,
                                 curves=curves, seeds=seeds)
    rows += [('simulation', f'ASHA / RS time, r_max {r.epochs:g}, '
              f'start-up {r.startup:.1f} s',
              f'{r.ratio:.2f} [{r.low:.2f}, {r.high:.2f}]')
             for _, r in saving.iterrows()]
    return rows + [('simulation', f'random search speed-up, {k} workers '
                    '(recorded clock for every K)', f'{r.speedup:.2f} '
                    f'[{r.low:.2f}, {r.high:.2f}] ({r.efficiency:.2f} K)')
                   for k, r in speedup.iterrows()]


PARTS = {'throughput': lambda args: throughput.rows(), 'tuner': part_tuner,
         'sections': part_sections, 'simulation': part_simulation}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true',
                   help='60 s tuners; the test budget\'s simulation')
    p.add_argument('--skip', nargs='*', default=[], choices=list(ABOUT))
    p.add_argument('--sections-log', type=Path, metavar='LOG',
                   help='the saved output of `bash run.sh book`, whose '
                        'sections\' times it takes (none: no sections)')
    p.add_argument('--results', type=Path, default=common.RESULTS)
    args = p.parse_args(argv)
    if args.sections_log is None and 'sections' not in args.skip:
        print('[run_all] sections: skipped, no --sections-log', flush=True)
        args.skip.append('sections')
    for part in (part for part in PARTS if part not in args.skip):
        print(f'[run_all] {part} ...', flush=True)
        started = time.monotonic()
        rows = PARTS[part](args)
        print('\n'.join(common.table(rows)), flush=True)
        title, about = ABOUT[part]
        flags = ' --quick' * args.quick + ' --sections-log LOG' * (
            part == 'sections')
        common.write(part, title, f'{about} Made by `python -m '
                     f'benchmarks.run_all{flags}` in '
                     f'{(time.monotonic() - started) / 60:.0f} minutes.',
                     rows, args.results)


if __name__ == '__main__':
    main()
