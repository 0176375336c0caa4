"""Build the book: evaluated notebooks, HTML and PDF, all usable offline.

``d2lbook build html`` and ``pdf`` with this venv first on ``PATH``, one
notebook at a time (``tools/d2lbook_serial.py``). d2lbook does not know
``HPO_BUDGET``: when it differs from the last build's
(``_build/eval/.hpo_budget``), the evaluated notebooks are deleted first.
"""
import argparse
import configparser
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hpo.setups import BUDGET_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
EVAL, HTML, PDF = (ROOT / '_build' / d for d in ('eval', 'html', 'pdf'))
BUDGET_STAMP = EVAL / '.hpo_budget'


def pdf_file():
    """The book's PDF: ``_build/pdf/<[project] name in config.ini>.pdf``."""
    config = configparser.ConfigParser()
    config.read(ROOT / 'config.ini', encoding='utf-8')
    return PDF / (config['project']['name'] + '.pdf')


def build_env():
    """The caller's environment with this venv's ``bin/`` first on PATH."""
    env = dict(os.environ, PATH=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get('PATH', '')]))
    env.setdefault('HPO_DATA_DIR', str(ROOT / 'data'))  # run.sh's data
    return env


def forget_other_budget(wanted):
    """Delete evaluated notebooks made with another ``HPO_BUDGET`` than
    ``wanted``; from now on ``_build/eval`` holds only notebooks of it."""
    if BUDGET_STAMP.exists() and BUDGET_STAMP.read_text().strip() == wanted:
        return
    stale = sorted(EVAL.rglob('*.ipynb')) if EVAL.exists() else []
    if stale:
        print(f'[build_book] {BUDGET_VARIABLE}={wanted} differs from the '
              f'last build: re-evaluating {len(stale)} notebooks',
              flush=True)
    for path in stale:
        path.unlink()
    EVAL.mkdir(parents=True, exist_ok=True)
    BUDGET_STAMP.write_text(wanted + '\n')


def d2lbook(target, env, serial=True):
    """Run ``d2lbook build <target>`` (``serial``: through
    ``tools.d2lbook_serial``); return the seconds it took."""
    how = 'one notebook at a time' if serial else "d2lbook's parallel eval"
    print(f'[build_book] d2lbook build {target} ({how})', flush=True)
    command = ([sys.executable, '-m', 'tools.d2lbook_serial'] if serial
               else ['d2lbook'])
    tik = time.monotonic()
    proc = subprocess.run([*command, 'build', target], cwd=ROOT, env=env)
    seconds = time.monotonic() - tik
    if proc.returncode != 0:
        raise SystemExit(f'[build_book] d2lbook build {target} failed '
                         f'(exit code {proc.returncode}) after '
                         f'{seconds:.0f} s; see the messages above')
    print(f'[build_book] d2lbook build {target}: {seconds:.0f} s',
          flush=True)
    return seconds


def check_offline_html():
    """Fail if the HTML lacks the offline MathJax (``config.ini``'s
    ``sphinx-mathjax-offline``); an external URL left in the theme's
    ``d2l.js`` fails the build itself (``tools.sphinx_offline``)."""
    if not (HTML / '_static' / 'mathjax' / 'tex-chtml.js').exists():
        raise SystemExit('[build_book] offline MathJax is missing in '
                         f'{HTML / "_static"}')


def build(html_only=False, serial=True):
    """Build the HTML and, unless ``html_only``, the PDF; say how long
    each took and where they and the evaluated notebooks are."""
    env = build_env()
    budget = env.get(BUDGET_VARIABLE) or 'full'
    forget_other_budget(budget)
    took = f'HTML {d2lbook("html", env, serial):.0f} s'
    check_offline_html()
    made = {'HTML:': [HTML / 'index.html']}
    if not html_only:
        # latexmk keeps state from failed runs that breaks the next one
        shutil.rmtree(PDF, ignore_errors=True)
        took += f', PDF {d2lbook("pdf", env, serial):.0f} s'
        if not pdf_file().exists():
            raise SystemExit(f'[build_book] {pdf_file()} was not made')
        made['PDF:'] = [pdf_file()]
    made['notebooks:'] = sorted(p for p in EVAL.rglob('*.ipynb')
                                if '.ipynb_checkpoints' not in p.parts)
    print(f'\n[build_book] done ({BUDGET_VARIABLE}={budget}; {took})')
    for label, paths in made.items():
        for i, path in enumerate(paths):
            print(f'  {"" if i else label:<10} {os.path.relpath(path)}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for flag, means in (
            ('--html-only', 'build the HTML (and notebooks), not the PDF'),
            ('--parallel-eval', "d2lbook's evaluation: two notebooks at a "
             'time, at most two GPUs each (falsifies the timings)')):
        parser.add_argument(flag, action='store_true', help=means)
    args = parser.parse_args(argv)
    build(html_only=args.html_only, serial=not args.parallel_eval)


if __name__ == '__main__':
    main()
