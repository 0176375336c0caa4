"""Build the book: evaluated notebooks, HTML and PDF, all usable offline.

Usage (from the repository root; ``bash run.sh book`` does this)::

    .venv/bin/python -m tools.build_book [--html-only] [--parallel-eval]

Runs ``d2lbook build html`` and then ``d2lbook build pdf`` with this
Python's ``bin/`` first on ``PATH``, so the venv's ``d2lbook``,
``sphinx-build`` and Jupyter kernel are used. The environment is passed
through: ``HPO_BUDGET=test`` shrinks every tuning experiment to a few
seconds per trial, without it the notebooks use their real budgets.
``HPO_DATA_DIR`` defaults to ``data/`` here (prepared by ``run.sh``).

Notebooks are evaluated one at a time, each with the whole machine and all
its GPUs (see ``tools/d2lbook_serial.py`` for why d2lbook's own way would
falsify the timings); ``--parallel-eval`` keeps d2lbook's way.

d2lbook re-evaluates a notebook only when its source or a dependency is
newer than its evaluated copy; it does not know about ``HPO_BUDGET``. So
the budget of the last build is kept in ``_build/eval/.hpo_budget``, and
when it changes, the evaluated notebooks are deleted first: a test build
never leaves its tiny results behind in the real book, and the other way
round.

Offline HTML needs no step here: ``config.ini`` loads the Sphinx extensions
``sphinx-mathjax-offline`` (MathJax from ``_static``) and
``tools.sphinx_offline`` (copy-button icon from ``_static``, no analytics);
this script only checks the result.
"""
import argparse
import configparser
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools.sphinx_offline import external_urls

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / '_build'
EVAL = BUILD / 'eval'
HTML = BUILD / 'html'
PDF = BUILD / 'pdf'
BUDGET_VARIABLE = 'HPO_BUDGET'
BUDGET_STAMP = EVAL / '.hpo_budget'


def pdf_file():
    """The book's PDF: ``_build/pdf/<[project] name in config.ini>.pdf``."""
    config = configparser.ConfigParser()
    config.read(ROOT / 'config.ini', encoding='utf-8')
    return PDF / (config['project']['name'] + '.pdf')


def build_env():
    """The caller's environment with this venv's ``bin/`` first on PATH."""
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env['PATH'] = venv_bin + os.pathsep + env.get('PATH', '')
    # the notebooks and their trials read the data prepared by run.sh
    env.setdefault('HPO_DATA_DIR', str(ROOT / 'data'))
    return env


def budget(env):
    return env.get(BUDGET_VARIABLE) or 'full'


def forget_other_budget(env):
    """Delete evaluated notebooks made with another ``HPO_BUDGET``."""
    wanted = budget(env)
    if BUDGET_STAMP.exists() and BUDGET_STAMP.read_text().strip() == wanted:
        return
    stale = sorted(EVAL.rglob('*.ipynb')) if EVAL.exists() else []
    if stale:
        print(f'[build_book] {BUDGET_VARIABLE}={wanted} differs from the '
              f'last build: re-evaluating {len(stale)} notebooks',
              flush=True)
    for path in stale:
        path.unlink()
    # from now on _build/eval holds only notebooks evaluated with `wanted`
    EVAL.mkdir(parents=True, exist_ok=True)
    BUDGET_STAMP.write_text(wanted + '\n')


def d2lbook(target, env, serial=True):
    """Run ``d2lbook build <target>``; return the seconds it took.

    ``serial``: evaluate notebooks one at a time, each seeing all GPUs
    (``tools.d2lbook_serial``); else as d2lbook does, two at a time.
    """
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
    """Fail if the theme's script still points at an external host."""
    d2l_js = HTML / '_static' / 'd2l.js'
    left = external_urls(d2l_js.read_text(encoding='utf-8'))
    if left:
        raise SystemExit(f'[build_book] external URLs left in {d2l_js}: '
                         f'{sorted(set(left))}')
    if not (HTML / '_static' / 'mathjax' / 'tex-chtml.js').exists():
        raise SystemExit('[build_book] offline MathJax is missing in '
                         f'{HTML / "_static"}')


def build(html_only=False, serial=True):
    env = build_env()
    forget_other_budget(env)
    html_seconds = d2lbook('html', env, serial)
    check_offline_html()
    pdf_seconds = None
    if not html_only:
        # latexmk keeps state from failed runs that breaks the next one
        shutil.rmtree(PDF, ignore_errors=True)
        pdf_seconds = d2lbook('pdf', env, serial)
        if not pdf_file().exists():
            raise SystemExit(f'[build_book] {pdf_file()} was not made')
    report(html_seconds, pdf_seconds, budget(env))


def _rel(path):
    return os.path.relpath(path, Path.cwd())


def report(html_seconds, pdf_seconds, budget_used):
    rel = _rel
    print(f'\n[build_book] done ({BUDGET_VARIABLE}={budget_used}; '
          f'HTML {html_seconds:.0f} s'
          + (f', PDF {pdf_seconds:.0f} s' if pdf_seconds else '') + ')')
    print(f'  HTML:      {rel(HTML / "index.html")}')
    if pdf_seconds is not None:
        print(f'  PDF:       {rel(pdf_file())}')
    notebooks = sorted(p for p in EVAL.rglob('*.ipynb')
                       if '.ipynb_checkpoints' not in p.parts)
    for i, nb in enumerate(notebooks):
        label = 'notebooks:' if i == 0 else ''
        print(f'  {label:<10} {rel(nb)}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--html-only', action='store_true',
                        help='build the HTML (and notebooks), not the PDF')
    parser.add_argument(
        '--parallel-eval', action='store_true',
        help="evaluate notebooks as d2lbook does: two at a time (sharing "
             "the cores), at most two GPUs each; the experiments' timings "
             "are then not those of a machine of their own")
    args = parser.parse_args(argv)
    build(html_only=args.html_only, serial=not args.parallel_eval)


if __name__ == '__main__':
    main()
