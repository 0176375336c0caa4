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
    files = [*ROOT.glob('*.py'), *ROOT.glob('hpo/*.py')]
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in files}
    assert shown_blocks(section), f'{section} shows no code'
    for block in shown_blocks(section):
        found = [name for name, text in sources.items() if block in text]
        assert found, f'{section} shows code found in no file:\n{block}'


def test_shown_search_space_is_the_one_both_sections_tune():
    """rs-async.md spells the search space out; sh-async.md, the recorder
    of the simulator's table and the tests use hpo.tuner.search_space()."""
    import hpo.tuner
    from syne_tune import config_space as cs
    text = (ROOT / 'chapter_hpo' / 'rs-async.md').read_text()
    literal = re.search(r'^config_space = (\{\n.*?^\})$', text,
                        re.S | re.M).group(1)
    shown = eval(literal, {name: getattr(cs, name) for name in
                           ('loguniform', 'uniform', 'randint')})
    expected = hpo.tuner.search_space()
    assert list(shown) == list(expected)
    for name, domain in expected.items():
        assert type(shown[name]) is type(domain)
        assert (shown[name].lower, shown[name].upper) == \
            (domain.lower, domain.upper)


# how an experiment runs: the same in every section and in the benchmarks'
# hpo.tuner.run_experiment (the entry point and the budget differ)
RUN_ARGUMENTS = {'LocalBackend': ('num_gpus_per_trial', 'gpus_to_use'),
                 'Tuner': ('n_workers', 'sleep_time', 'max_failures')}
CODE_CELL = re.compile(r'^```\{\.python \.input\}\n(.*?)^```$', re.S | re.M)


def run_arguments(source):
    """The arguments in ``RUN_ARGUMENTS`` of every such call, as text."""
    import ast
    calls = []
    for node in ast.walk(ast.parse(source)):
        name = getattr(getattr(node, 'func', None), 'id', None)
        if isinstance(node, ast.Call) and name in RUN_ARGUMENTS:
            given = {k.arg: ast.unparse(k.value) for k in node.keywords}
            calls.append((name, {k: given.get(k)
                                 for k in RUN_ARGUMENTS[name]}))
    return calls


@pytest.mark.parametrize('section', ['rs-async.md', 'sh-async.md',
                                     'hpo-ray.md'])
def test_benchmarks_run_experiments_as_the_sections_do(section):
    import inspect
    import hpo.tuner
    text = (ROOT / 'chapter_hpo' / section).read_text()
    cells = '\n'.join(c.replace('%', '#') for c in CODE_CELL.findall(text))
    shown = run_arguments(cells)
    library = run_arguments(inspect.getsource(hpo.tuner.run_experiment))
    assert sorted(name for name, _ in shown) == ['LocalBackend', 'Tuner']
    assert sorted(shown) == sorted(library)
