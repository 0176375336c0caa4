"""PEP 8 for the Python files, and d2l's 79 characters for notebook code."""
import re
import subprocess
import sys

import pytest

from conftest import ROOT

CODE_CELL = re.compile(r'^```\{\.python \.input\}\n(.*?)^```$', re.S | re.M)
SECTIONS = sorted(ROOT.glob('chapter_*/*.md'))


def test_python_files_follow_pep8():
    files = [str(p) for p in ROOT.glob('**/*.py')
             if not {'.venv', '_build', 'data'} & set(p.parts)]
    proc = subprocess.run([sys.executable, '-m', 'pycodestyle',
                           '--max-line-length=79', *files],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize('section', SECTIONS, ids=lambda p: p.name)
def test_notebook_code_lines_fit(section):
    text = section.read_text()
    for cell in CODE_CELL.findall(text):
        for line in cell.splitlines():
            assert len(line) <= 79, f'{section.name}: {line}'


@pytest.mark.parametrize('section', SECTIONS, ids=lambda p: p.name)
def test_no_leftover_notes(section):
    text = section.read_text()
    for marker in ('TODO', '???', 'FIXME', 'XXX', 'MS:'):
        assert marker not in text, f'{section.name} contains {marker!r}'
