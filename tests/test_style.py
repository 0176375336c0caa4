"""ruff (pyflakes and pycodestyle rules, see ruff.toml) over the Python
files and the notebooks' code cells; pycodestyle itself over the Python
files for the continuation-line rules (E12x) that ruff does not have."""
import re
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT

CODE_CELL = re.compile(r'^```\{\.python \.input\}\n(.*?)^```$', re.S | re.M)
SECTIONS = sorted(ROOT.glob('chapter_*/*.md'))
# a notebook's code runs top to bottom in cells: imports may come late, and
# a trailing semicolon hides a cell's value
NOTEBOOK_IGNORE = 'E402,E703'
# `%load_ext d2lbook.tab` defines `tab` in the first cell
NOTEBOOK_BUILTINS = "builtins = ['tab']"


def ruff(*args):
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check',
                           '--output-format', 'concise', *args],
                          capture_output=True, text=True, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr


def test_python_files_pass_ruff():
    code, out = ruff('.')
    assert code == 0, out


def test_python_files_follow_pep8():
    files = [str(p) for p in ROOT.glob('**/*.py')
             if not {'.venv', '_build', '_test_book', 'data'} & set(p.parts)]
    proc = subprocess.run([sys.executable, '-m', 'pycodestyle',
                           '--max-line-length=79', *files],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def code_cells(section):
    """The section's evaluated code cells, without IPython magic lines."""
    return ['\n'.join(line for line in cell.splitlines()
                      if not line.startswith('%'))
            for cell in CODE_CELL.findall(section.read_text())]


def test_magic_lines_are_the_only_ones_skipped():
    cells = code_cells(ROOT / 'chapter_hpo' / 'rs-async.md')
    assert cells and not any('%load_ext' in c for c in cells)


@pytest.mark.parametrize('section', SECTIONS, ids=lambda p: p.name)
def test_notebook_code_passes_ruff(section, tmp_path):
    cells = code_cells(section)
    if not cells:
        pytest.skip('no code cells')
    # each cell ends with a newline: ruff 0.17 reports the last line of a
    # cell that ends inside an indented block without one as misindented
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c + '\n') for c in cells],
        metadata={'language_info': {'name': 'python'}})
    notebook = tmp_path / (section.stem + '.ipynb')
    nbformat.write(nb, notebook)
    code, out = ruff('--extend-ignore', NOTEBOOK_IGNORE,
                     '--config', NOTEBOOK_BUILTINS, str(notebook))
    assert code == 0, f'{section.relative_to(ROOT)}:\n{out}'


@pytest.mark.parametrize('section', SECTIONS, ids=lambda p: p.name)
def test_no_leftover_notes(section):
    text = section.read_text()
    for marker in ('TODO', '???', 'FIXME', 'XXX', 'MS:'):
        assert marker not in text, f'{section.name} contains {marker!r}'


def python_files(*folders):
    """The repository's Python files in ``folders`` (default: all but the
    tests), as the issue's structural rules count them."""
    skip = {'.venv', '_build', '_test_book', 'data', 'tests'}
    roots = folders or ('.',)
    return sorted(p for root in roots for p in (ROOT / root).glob('**/*.py')
                  if not skip & set(p.relative_to(ROOT).parts))


def test_no_function_outside_the_tests_is_longer_than_50_lines():
    import ast
    long = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 50:
                    long.append(f'{path.relative_to(ROOT)}: {node.name} '
                                f'({length} lines)')
    assert not long, '\n'.join(long)


def test_no_sys_path_edits():
    edits = re.compile(r'sys\.path\.(insert|append|extend)|sys\.path *=')
    files = python_files() + sorted((ROOT / 'tests').glob('*.py'))
    found = [str(p.relative_to(ROOT)) for p in files
             if edits.search(p.read_text())]
    assert not found


def calls_of(name, path):
    """How many calls of ``name`` (``LocalBackend(...)``) ``path`` has."""
    import ast
    return sum(isinstance(node, ast.Call)
               and getattr(node.func, 'id', None) == name
               for node in ast.walk(ast.parse(path.read_text())))


def test_local_backend_is_built_in_one_library_function():
    """``LocalBackend(``: in ``hpo.tuner.run_experiment`` and in the
    notebooks only (the tests use ``run_experiment`` too)."""
    files = python_files() + sorted((ROOT / 'tests').glob('*.py'))
    found = {str(p.relative_to(ROOT)): calls_of('LocalBackend', p)
             for p in files}
    assert {k: v for k, v in found.items() if v} == {'hpo/tuner.py': 1}


# Imported in a fresh interpreter after the modules' own third-party
# imports: any change to the environment, logger levels or handlers,
# signal handlers or sys.path is the hpo module's doing.
IMPORT_CHECK = '''
import ast, importlib, logging, os, signal, sys
from pathlib import Path


def state():
    levels = {name: logger.level for name, logger
              in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger) and logger.level}
    return dict(environ=dict(os.environ), levels=levels,
                root=(logging.root.level, len(logging.root.handlers)),
                signals=[signal.getsignal(s) for s in
                         (signal.SIGINT, signal.SIGTERM)],
                path=list(sys.path))


modules = sorted(Path('hpo').glob('*.py'))
for path in modules:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split('.')[0] != 'hpo':
                importlib.import_module(name)
before = state()
for path in modules:
    importlib.import_module('hpo.' + path.stem)
    after = state()
    for key in before:
        if after[key] != before[key]:
            print(path.name, key)
'''


def test_importing_a_module_changes_no_global_state():
    proc = subprocess.run([sys.executable, '-c', IMPORT_CHECK], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == '', proc.stdout
