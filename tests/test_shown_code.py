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
# sections that show excerpts of the repository's code, but no whole file
EXCERPTS_ONLY = ['hpo-ray.md']


def shown_blocks(section):
    return SHOWN.findall((ROOT / 'chapter_hpo' / section).read_text())


@pytest.mark.parametrize('section,script', sorted(WHOLE_FILES.items()))
def test_section_shows_its_whole_training_script(section, script):
    blocks = shown_blocks(section)
    assert (ROOT / script).read_text() in blocks


@pytest.mark.parametrize('section', sorted(WHOLE_FILES) + EXCERPTS_ONLY)
def test_every_shown_excerpt_is_verbatim(section):
    files = [*ROOT.glob('*.py'), *ROOT.glob('chapter_hpo/*.py')]
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in files}
    assert shown_blocks(section), f'{section} shows no code'
    for block in shown_blocks(section):
        found = [name for name, text in sources.items() if block in text]
        assert found, f'{section} shows code found in no file:\n{block}'


def test_shown_search_space_is_the_one_both_sections_tune():
    """rs-async.md spells the search space out; sh-async.md, the recorder
    of the simulator's table and the tests use hpo_utils.search_space()."""
    import hpo_utils
    from syne_tune import config_space as cs
    text = (ROOT / 'chapter_hpo' / 'rs-async.md').read_text()
    literal = re.search(r'^config_space = (\{\n.*?^\})$', text,
                        re.S | re.M).group(1)
    shown = eval(literal, {name: getattr(cs, name) for name in
                           ('loguniform', 'uniform', 'randint')})
    expected = hpo_utils.search_space()
    assert list(shown) == list(expected)
    for name, domain in expected.items():
        assert type(shown[name]) is type(domain)
        assert (shown[name].lower, shown[name].upper) == \
            (domain.lower, domain.upper)
