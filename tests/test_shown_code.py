"""The code the book shows is the code that runs.

Code the sections show but do not execute (plain ```python blocks) must be
either a whole file of the repository or a verbatim excerpt of one.
"""
import re

import pytest

from conftest import ROOT

SHOWN = re.compile(r'^```python\n(.*?)^```$', re.S | re.M)
WHOLE_FILES = {'rs-async.md': 'train_script.py',
               'sh-async.md': 'train_script_report_eachepoch.py'}


def shown_blocks(section):
    return SHOWN.findall((ROOT / 'chapter_hpo' / section).read_text())


@pytest.mark.parametrize('section,script', sorted(WHOLE_FILES.items()))
def test_section_shows_its_whole_training_script(section, script):
    blocks = shown_blocks(section)
    assert (ROOT / script).read_text() in blocks


@pytest.mark.parametrize('section', sorted(WHOLE_FILES))
def test_every_shown_excerpt_is_verbatim(section):
    sources = {p.name: p.read_text() for p in ROOT.glob('*.py')}
    for block in shown_blocks(section):
        found = [name for name, text in sources.items() if block in text]
        assert found, f'{section} shows code found in no file:\n{block}'
