"""What the benchmarks share: timing, the scripts as processes, results.

Each block of ``benchmarks/results.md`` is data, kept as
``benchmarks/results/<key>.json``; :func:`render` writes the file from them.
"""
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import hpo.setups

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'benchmarks' / 'results.md'
SCRIPTS = ('train_script.py', 'train_script_report_eachepoch.py')
# the blocks' order in results.md; blocks not named here come last
ORDER = ('throughput', 'tuner', 'sections', 'simulation', 'gpu',
         'ray_vs_local', 'calibration')


def table(rows):
    """Markdown lines of a table of ``(part, measure, value)`` rows."""
    return ['| part | measure | value |', '|---|---|---|',
            *[f'| {a} | {b} | {c} |' for a, b, c in rows]]


def write(key, title, intro, rows, results=RESULTS):
    """Keep block ``key`` (heading, paragraph, table of ``rows``, today's
    date, this machine) as data beside ``results``; render ``results``."""
    folder = Path(results).with_suffix('')
    folder.mkdir(parents=True, exist_ok=True)
    block = dict(title=title, intro=intro, date=str(datetime.date.today()),
                 machine=hpo.setups.machine(),
                 rows=[list(map(str, r)) for r in rows])
    (folder / f'{key}.json').write_text(json.dumps(block, indent=1) + '\n')
    render(results)


def render(results=RESULTS):
    """Write ``results`` from the blocks kept beside it, in ``ORDER``."""
    blocks = {p.stem: json.loads(p.read_text())
              for p in Path(results).with_suffix('').glob('*.json')}
    lines = ['# Benchmark results', '', 'Rendered by `benchmarks.common` '
             'from `benchmarks/results/*.json`, one file a section.']
    for key in sorted(blocks, key=lambda k: (
            ORDER.index(k) if k in ORDER else len(ORDER), k)):
        b = blocks[key]
        made = [f'{what.capitalize()}: {b[what]}.' for what in ('date',
                'machine') if b[what] and b[what] not in b['intro']]
        lines += ['', f'## {b["title"]}', '', b['intro'],
                  *(['', ' '.join(made)] if made else []),
                  '', *table(b['rows'])]
    Path(results).write_text('\n'.join(lines) + '\n')


def timed(fn, repeats=1, warmup=0, sync=None):
    """Seconds that ``repeats`` calls of ``fn`` take after ``warmup``
    calls; ``sync`` (e.g. CUDA's) is called before each clock reading."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    tik = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return time.perf_counter() - tik


def sgd_step(model, learning_rate, momentum):
    """A function ``(x, y)`` -> one SGD step of ``model`` on the batch."""
    from torch.nn import functional as F
    import hpo.training
    opt = hpo.training.SGD(model.parameters(), learning_rate, momentum)

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def script_outputs(script, args, copies=1, threads=1, gpu=''):
    """The outputs of ``copies`` runs of the training ``script`` with
    ``args``, started at once, copy ``i`` with ``--seed=i``, each with
    ``threads`` threads and the GPU ``gpu`` (none: the CPU)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               CUDA_VISIBLE_DEVICES=gpu)
    procs = [subprocess.Popen(
        [sys.executable, str(ROOT / script), *args, f'--seed={i}'],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(copies)]
    try:
        outs = [p.communicate(timeout=3600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f'{script} failed:\n{err[-3000:]}')
    return [out for out, _ in outs]


def script_times(script, args, epochs, copies=1, **env):
    """Per copy of ``script`` run for ``epochs``: the seconds of an
    ``epoch`` (the fastest after the first), of the ``startup`` before the
    first, to the ``first`` report; the last validation ``error``; ``out``.
    A script that reports only at its end (``train_script.py``) also runs
    for one epoch: the difference gives the mean of the later epochs.
    ``env``: ``threads`` and ``gpu``, as :func:`script_outputs` takes them."""
    from syne_tune.report import retrieve
    outs = script_outputs(script, [*args, f'--max_epochs={epochs}'], copies,
                          **env)
    runs = [[r['elapsed_time'] for r in retrieve(out.splitlines())]
            for out in outs]
    if not all(runs):
        raise RuntimeError('no report in an output:\n' + outs[0][-2000:])
    once = len(runs[0]) == 1
    if once:  # the same for one epoch, to time the first
        ones = script_outputs(script, [*args, '--max_epochs=1'], copies,
                              **env)
        runs = [[retrieve(one.splitlines())[-1]['elapsed_time'], times[0]]
                for one, times in zip(ones, runs)]
    result = []
    for times, out in zip(runs, outs):
        epoch = ((times[1] - times[0]) / (epochs - 1) if once
                 else min(b - a for a, b in zip(times, times[1:])))
        result.append(dict(epoch=epoch, first=times[0], out=out,
                           startup=times[0] - epoch, error=retrieve(
                               out.splitlines())[-1]['validation_error']))
    return result
