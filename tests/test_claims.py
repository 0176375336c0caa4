"""Figures the book's prose cites from ``benchmarks/results.md`` agree with
the row they come from (issue: the book and the benchmarks agree)."""
import re

from conftest import ROOT

import hpo.setups


def results_value(measure):
    """The value of the row of ``benchmarks/results.md`` whose measure
    starts with ``measure``."""
    text = (ROOT / 'benchmarks' / 'results.md').read_text()
    rows = re.findall(r'^\| \w+ \| (.*?) \| (.*?) \|$', text, re.M)
    values = [v for m, v in rows if m.startswith(measure)]
    assert len(values) == 1, f'{measure}: {values}'
    return values[0]


def test_alexnet_on_cpu_estimate_matches_the_prose():
    """rs-async and index.md: an epoch of the set-up's images takes 'over
    four minutes' and a full trial 'about two hours' on two cores."""
    per_50k = float(results_value('AlexNet 224x224, all cores, min/epoch'))
    constants = hpo.setups.SETUPS['GPU']['constants']
    epoch = per_50k * constants['n_train'] / 50_000
    trial = epoch * constants['max_epochs'] / 60
    assert 4 < epoch < 5
    assert 1.5 < trial < 2.5
    for section in ('rs-async.md', 'index.md'):
        text = ' '.join((ROOT / 'chapter_hpo' / section).read_text().split())
        assert 'would take over four minutes' in text, section
    index = ' '.join((ROOT / 'chapter_hpo' / 'index.md').read_text().split())
    assert 'a full trial about two hours' in index


def test_real_errors_differ_from_the_table_as_the_prose_says():
    """sh-async: the calibration's real runs' errors differ from the
    table's by a median of 0.001 (random search) and 0.004 (ASHA)."""
    text = ' '.join((ROOT / 'chapter_hpo' / 'sh-async.md').read_text()
                    .split())
    for method, cited in (('random search', '0.001'), ('ASHA', '0.004')):
        median = float(results_value(f'{method}: |real - recorded|')
                       .split(',')[0])
        assert f'{median:.3f}' == cited
        assert f'{cited} ({method})' in text
    tenth = float(results_value('ASHA: |real - recorded|').split(',')[1])
    assert f'by {tenth:.3f} or more in a tenth of ASHA' in text


def test_exit_times_match_the_prose():
    """rs-async cites the throughput benchmark's exit times."""
    text = ' '.join((ROOT / 'chapter_hpo' / 'rs-async.md').read_text()
                    .split())
    normal = results_value('process exit after last output, normal exit')
    fast = results_value('process exit after last output, exit_now()')
    assert f'took {normal} to shut down after its last output, against ' \
        f'{fast} with `exit_now()`' in text
