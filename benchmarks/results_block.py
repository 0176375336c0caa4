"""Blocks of ``benchmarks/results.md`` that one benchmark owns.

A benchmark that runs on its own (``gpu.py``, ``calibration.py``) keeps
its rows between two marker lines named after it; running it again
replaces its block and keeps the rest of the file as it was.
"""
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results.md'


def machine():
    """The machine, as results name it: CPU, cores, memory, GPUs."""
    import torch
    cpu = platform.processor() or 'unknown CPU'
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    gpus = torch.cuda.device_count()
    return (f'{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, '
            f'{gpus} GPU(s); Python {platform.python_version()}, '
            f'torch {torch.__version__}')


def markers(name):
    """The begin and end lines of benchmark ``name``'s block."""
    return (f'<!-- benchmarks/{name}.py: begin (replaced when it runs '
            'again) -->', f'<!-- benchmarks/{name}.py: end -->')


def table(rows):
    """Markdown lines of a table of ``(part, measure, value)`` rows."""
    return ['| part | measure | value |', '|---|---|---|',
            *[f'| {a} | {b} | {c} |' for a, b, c in rows]]


def block(name, lines):
    begin, end = markers(name)
    return '\n'.join([begin, *lines, '', end]) + '\n'


def with_block(text, name, new_block):
    """``text`` with ``name``'s block replaced, where it is, by
    ``new_block`` (an empty one removes it), or with ``new_block`` added
    at the end."""
    begin, end = markers(name)
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        parts = [head.rstrip('\n'), new_block.strip('\n'),
                 rest.split(end, 1)[1].strip('\n')]
    else:
        parts = [text.rstrip('\n'), new_block.strip('\n')]
    text = '\n\n'.join(part for part in parts if part)
    return text + '\n' if text else ''


def write(name, title, description, rows, path=RESULTS):
    """Write ``name``'s block: a heading, a sentence, the table."""
    path = Path(path)
    text = path.read_text() if path.exists() else ''
    lines = [f'## {title}', '', description, '', *table(rows)]
    path.write_text(with_block(text, name, block(name, lines)))
