"""``benchmarks.common``: results kept as data and rendered into
``benchmarks/results.md``, a block replaced by its benchmark's next run,
the scripts timed as real processes; ``benchmarks.run_all`` writing its
parts' blocks."""
import json
import re
import shutil

import pytest

import hpo.setups
from benchmarks import common, run_all

ROW = re.compile(r'^\|.*\|$', re.M)


def sections(text):
    """``{heading: text}`` of the ``## `` sections of a results file."""
    return dict(part.split('\n', 1) for part in text.split('\n## ')[1:])


def copy_results(tmp_path):
    """A copy of the committed results (data and Markdown) in tmp_path."""
    shutil.copytree(common.RESULTS.with_suffix(''), tmp_path / 'results')
    shutil.copy(common.RESULTS, tmp_path / 'results.md')
    return tmp_path / 'results.md'


def test_results_md_is_rendered_from_the_data(tmp_path):
    results = copy_results(tmp_path)
    common.render(results)
    assert results.read_text() == common.RESULTS.read_text()
    shown = sections(results.read_text())
    blocks = sorted((tmp_path / 'results').glob('*.json'))
    assert len(shown) == len(blocks) >= 7
    for path in blocks:
        block = json.loads(path.read_text())
        body = shown[block['title']]
        assert block['intro'] in body and block['date'] in body
        assert ROW.findall(body)[2:] == common.table(block['rows'])[2:]


def test_a_block_is_replaced_and_the_others_kept(tmp_path):
    results = copy_results(tmp_path)
    before = sections(results.read_text())
    common.write('gpu', 'GPU set-up', 'first', [('gpu', 'x', '1')], results)
    common.write('new', 'A new block', 'later', [('a', 'b', 'c')], results)
    common.write('gpu', 'GPU set-up', 'second', [('gpu', 'y', '2')], results)
    after = sections(results.read_text())
    assert list(after) == [*before, 'A new block']  # in ``common.ORDER``
    assert ROW.findall(after['GPU set-up'])[2:] == ['| gpu | y | 2 |']
    assert 'first' not in after['GPU set-up']
    assert hpo.setups.machine() in after['GPU set-up']
    del before['GPU set-up'], after['GPU set-up'], after['A new block']
    assert after == before


def test_both_scripts_timed_as_processes():
    """Copies of the script that reports each epoch, timed within each
    run; the one that reports only at its end (``train_script.py``) is
    also run for one epoch, and the difference, which includes two
    start-ups' noise, must still be an epoch's positive time."""
    for script, copies in zip(common.SCRIPTS[::-1], (2, 1)):
        runs = common.script_times(script, ['--n_train=8000'], 3, copies)
        assert len(runs) == copies
        for r in runs:
            assert 0 < r['epoch'] < r['first']
            assert r['startup'] == r['first'] - r['epoch']
            assert 0 < r['error'] < 1 and 'validation_error' in r['out']


def test_run_all_writes_the_sections_from_a_book_log(tmp_path):
    results = copy_results(tmp_path)
    before = sections(results.read_text())
    log = tmp_path / 'book.log'
    log.write_text(''.join(  # d2lbook's lines, on stderr
        f'[d2lbook:resource.py:L223] INFO   Task "Evaluating '
        f'./chapter_hpo/{name}.md" on CPU [0] is finished in 00:0{i}:1{i}\n'
        for i, name in enumerate(run_all.SECTIONS)))
    run_all.main(['--skip', 'throughput', 'tuner', 'simulation',
                  '--sections-log', str(log), '--results', str(results)])
    after = sections(results.read_text())
    title = run_all.ABOUT['sections'][0]
    assert ROW.findall(after.pop(title))[2:] == [
        '| sections | rs-async, budget "full", in the book build | 10 s |',
        '| sections | sh-async, budget "full", in the book build | 71 s |',
        '| sections | hpo-ray, budget "full", in the book build | 132 s |']
    del before[title]
    assert after == before


def test_run_all_without_a_book_log_keeps_the_sections_block(
        tmp_path, capsys):
    results = copy_results(tmp_path)
    before = results.read_text()
    run_all.main(['--skip', 'throughput', 'tuner', 'simulation',
                  '--results', str(results)])
    assert 'sections: skipped, no --sections-log' in capsys.readouterr().out
    assert results.read_text() == before


def test_run_all_refuses_a_log_that_times_not_every_section(tmp_path):
    """A build that found the notebooks evaluated times none of them."""
    results = copy_results(tmp_path)
    before = results.read_text()
    log = tmp_path / 'book.log'
    log.write_text('[d2lbook:resource.py:L223] INFO   Task "Evaluating '
                   './chapter_hpo/rs-async.md" on CPU [0] is finished in '
                   '00:08:11\n[build_book] done (HPO_BUDGET=full; HTML 9 s)\n')
    with pytest.raises(SystemExit, match='times no sh-async, hpo-ray'):
        run_all.main(['--skip', 'throughput', 'tuner', 'simulation',
                      '--sections-log', str(log), '--results', str(results)])
    assert results.read_text() == before
