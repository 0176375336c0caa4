"""The code the book shows is the code that runs.

A section shows the repository's code only through an executed cell that
displays its live source with ``hpo.show``, never as a copy in a plain
```python block that nothing runs or checks.
"""
import inspect
import re

import pytest

from conftest import ROOT

CODE_CELL = re.compile(r'^```\{\.python \.input\}\n(.*?)^```$', re.S | re.M)
# what each section shows: a file of the repository or a function
SHOWN = {'rs-async.md': ["'train_script.py'", 'hpo.training._epochs'],
         'sh-async.md': ["'train_script_report_eachepoch.py'",
                         'hpo.sim.synchronous_sh'],
         'hpo-ray.md': ['hpo.ray_tuning.train_fn']}


def cell_lines(section):
    text = (ROOT / 'chapter_hpo' / section).read_text()
    return [line for cell in CODE_CELL.findall(text)
            for line in cell.splitlines()]


@pytest.mark.parametrize('section', ['index.md', *sorted(SHOWN)])
def test_no_section_shows_a_copy_of_code(section):
    text = (ROOT / 'chapter_hpo' / section).read_text()
    assert '```python' not in text


@pytest.mark.parametrize('section,what', [(s, w) for s in sorted(SHOWN)
                                          for w in SHOWN[s]])
def test_section_shows_the_live_source(section, what):
    assert f'hpo.show({what})' in cell_lines(section)


def test_show_displays_a_file_or_a_function_exactly():
    import hpo.sim
    shown = [hpo.show('train_script.py').data,
             hpo.show(hpo.sim.synchronous_sh).data]
    expected = [(ROOT / 'train_script.py').read_text(),
                inspect.getsource(hpo.sim.synchronous_sh)]
    assert shown == [f'````python\n{text.rstrip()}\n````'
                     for text in expected]
    with pytest.raises(FileNotFoundError):
        hpo.show('no_such_script.py')


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


@pytest.mark.parametrize('section', sorted(SHOWN))
def test_benchmarks_run_experiments_as_the_sections_do(section):
    import hpo.tuner
    text = (ROOT / 'chapter_hpo' / section).read_text()
    cells = '\n'.join(c.replace('%', '#') for c in CODE_CELL.findall(text))
    shown = run_arguments(cells)
    library = run_arguments(inspect.getsource(hpo.tuner.run_experiment))
    assert sorted(name for name, _ in shown) == ['LocalBackend', 'Tuner']
    assert sorted(shown) == sorted(library)
