"""What the benchmarks share: the machine, timing, and the results.

Results are data: each block of ``benchmarks/results.md`` is kept as
``benchmarks/results/<key>.json`` (title, intro, date, machine, rows of
``(part, measure, value)``), and :func:`render` writes the Markdown file
from all of them. A benchmark that runs again replaces only its blocks.
"""
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'benchmarks' / 'results.md'
# the blocks' order in results.md; blocks not named here come last
ORDER = ('throughput', 'startup', 'tuner', 'sections', 'simulation', 'book',
         'gpu', 'ray_vs_local', 'calibration')


def machine():
    """The machine, as results name it: CPU, cores, memory, GPUs."""
    import torch
    cpu = platform.processor() or 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as f:
            names = [line for line in f if line.startswith('model name')]
        cpu = names[0].split(':', 1)[1].strip() if names else cpu
    except OSError:
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    return (f'{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, '
            f'{torch.cuda.device_count()} GPU(s); Python '
            f'{platform.python_version()}, torch {torch.__version__}')


def table(rows):
    """Markdown lines of a table of ``(part, measure, value)`` rows."""
    return ['| part | measure | value |', '|---|---|---|',
            *[f'| {a} | {b} | {c} |' for a, b, c in rows]]


def write(key, title, intro, rows, results=RESULTS):
    """Keep block ``key`` (a heading, a paragraph, the table of ``rows``)
    as data beside ``results``, with today's date and this machine; then
    render ``results``."""
    folder = Path(results).with_suffix('')
    folder.mkdir(parents=True, exist_ok=True)
    block = dict(title=title, intro=intro, date=str(datetime.date.today()),
                 machine=machine(), rows=[list(map(str, r)) for r in rows])
    (folder / f'{key}.json').write_text(json.dumps(block, indent=1) + '\n')
    render(results)


def render(results=RESULTS):
    """Write ``results`` from the blocks kept beside it, in ``ORDER``."""
    blocks = {p.stem: json.loads(p.read_text())
              for p in Path(results).with_suffix('').glob('*.json')}
    lines = ['# Benchmark results', '',
             'Each section is one block of data in `benchmarks/results/`, '
             'written by the command its paragraph names; '
             '`benchmarks.common.render` writes this file from them.']
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


def script_outputs(script, args, copies=1, env=None):
    """The standard outputs of ``copies`` runs of the training ``script``
    with ``args``, started at once, copy ``i`` with ``--seed=i``."""
    procs = [subprocess.Popen(
        [sys.executable, str(ROOT / script), *args, f'--seed={i}'],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(copies)]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=3600)
            if p.returncode != 0:
                raise RuntimeError(f'{script} failed:\n{err[-3000:]}')
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def script_times(script, args, epochs, copies=1, env=None):
    """Per copy of :func:`script_outputs` run for ``epochs`` epochs: the
    seconds of an ``epoch`` after the first, to the ``first`` report, the
    last validation ``error`` and the ``out``put.

    With a report per epoch: the fastest epoch after the first. A script
    that reports only after its last epoch (``train_script.py``) is run
    for one epoch too: the difference of the two runs' elapsed times gives
    the mean of the later epochs."""
    from syne_tune.report import retrieve
    outs = script_outputs(script, [*args, f'--max_epochs={epochs}'], copies,
                          env)
    runs = [retrieve(out.splitlines()) for out in outs]
    if not all(runs):
        raise RuntimeError('no report in an output:\n' + outs[0][-2000:])
    ones = [None] * copies
    if epochs > 1 and len(runs[0]) == 1:
        ones = [retrieve(out.splitlines())[-1]['elapsed_time'] for out in
                script_outputs(script, [*args, '--max_epochs=1'], copies,
                               env)]
    result = []
    for reports, one, out in zip(runs, ones, outs):
        times = [r['elapsed_time'] for r in reports]
        epoch = (min(b - a for a, b in zip(times, times[1:]))
                 if one is None else (times[-1] - one) / (epochs - 1))
        result.append(dict(epoch=epoch, first=times[0] if one is None
                           else one, out=out,
                           error=reports[-1]['validation_error']))
    return result
