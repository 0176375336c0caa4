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
