"""The two sections, evaluated end to end as notebooks (test budget).

The notebooks are the ones the HTML build evaluated with ``HPO_BUDGET=test``
(see ``html_build`` in ``conftest.py``): the same code as in the book, with
tiny experiments. These tests read their outputs and check them against the
experiments' own files.
"""
import re

import nbformat
import pytest

import hpo.trials
import hpo.tuner
from conftest import (BUILD, EXPERIMENTS, ROOT, busy_by_sampling,
                      epochs_where_asha_stops)

pytestmark = pytest.mark.book
SECTIONS = ['rs-async', 'sh-async']


def outputs(name):
    nb = nbformat.read(BUILD / 'eval' / 'chapter_hpo' / f'{name}.ipynb', 4)
    cells = [c for c in nb.cells if c.cell_type == 'code']
    return cells, [o for c in cells for o in c.get('outputs', [])]


def text_of(outs):
    parts = []
    for o in outs:
        if o.output_type == 'stream':
            parts.append(o.text)
        elif 'data' in o and 'text/plain' in o.data:
            parts.append(o.data['text/plain'])
    return '\n'.join(parts)


def experiment(text):
    """The experiment a notebook ran, from the tuner's log in its output."""
    from syne_tune.experiments import load_experiment
    name = re.search(r'^experiment (\S+)$', text, re.M).group(1)
    assert (EXPERIMENTS / name).is_dir()
    return load_experiment(name, local_path=str(EXPERIMENTS))


@pytest.mark.parametrize('name', SECTIONS)
def test_every_cell_ran_without_error(html_build, name):
    cells, outs = outputs(name)
    assert all(c.get('execution_count') for c in cells)
    assert not [o for o in outs if o.output_type == 'error']
    text = text_of(outs)
    assert 'set-up "test (' in text  # the test budget, printed


@pytest.mark.parametrize('name', SECTIONS)
def test_figures_are_svg(html_build, name):
    """Every figure reaches the book as SVG (``tests/test_plots.py``
    checks what each one draws)."""
    _, outs = outputs(name)
    images = [o.data for o in outs if 'data' in o
              and any(k.startswith('image/') for k in o.data)]
    assert images and all('image/svg+xml' in d for d in images)


@pytest.mark.parametrize('name', SECTIONS)
def test_busy_fraction_is_computed_from_the_run(html_build, name):
    text = text_of(outputs(name)[1])
    m = re.search(r'(\d+) trials in (\d+) s on (\d+) workers; '
                  r'busy ([\d.]+)% of the time', text)
    assert m, text[-2000:]
    n_trials, horizon, n_workers, busy = m.groups()
    exp = experiment(text)
    trials = hpo.trials.trial_table(exp)
    trial_dirs = [p for p in exp.path.iterdir() if p.name.isdigit()]
    assert int(n_trials) == len(trials) == len(trial_dirs)
    assert int(n_workers) == 2
    sampled = busy_by_sampling(trials['start'], trials['end'], 2,
                               trials['end'].max())
    assert float(busy) == pytest.approx(100 * sampled, abs=1.0)


PLACED = re.compile(
    r'speed factor: this machine took ([\d.]+) times the recorded time.*?'
    r'In (\d+) s this run started (\d+) trials; (\d+) simulated runs of '
    r'its set-up started ([\d.]+) to ([\d.]+) \(10% to 90%\), median '
    r'[\d.]+, so the real run is (inside|OUTSIDE) that range', re.S)


@pytest.mark.parametrize('name', SECTIONS)
def test_real_run_is_placed_among_simulations_on_its_clock(html_build,
                                                           name):
    """The speed factor printed is the one the run's own reports give,
    and the placement counts the run's trials."""
    import hpo.sim
    import hpo.trials
    text = text_of(outputs(name)[1])
    m = PLACED.search(text)
    assert m, text[-3000:]
    factor, _, n_trials, seeds, low, high, verdict = m.groups()
    exp = experiment(text)
    trials = hpo.trials.trial_table(exp)
    curves = hpo.sim.load_curves(hpo.sim.TEST_CURVES)
    measured = hpo.sim.speed_factor(hpo.trials.report_times(exp), trials,
                                    curves)
    assert float(factor) == pytest.approx(measured, abs=0.0006)
    assert int(n_trials) == len(trials) and int(seeds) == 20
    inside = float(low) <= int(n_trials) <= float(high)
    assert verdict == ('inside' if inside else 'OUTSIDE')


def test_methods_are_compared_on_the_delivered_error(html_build):
    text = text_of(outputs('sh-async')[1])
    idle = re.search(r'synchronous SH: workers idle (\d+)% of', text)
    assert idle and 0 < int(idle.group(1)) < 100
    ranked = re.findall(r'^(ASHA|Hyperband|synchronous SH): ([\d.]+) of '
                        r'random search\'s time \[([\d.]+), ([\d.]+)\]',
                        text, re.M)
    assert sorted(r[0] for r in ranked) == ['ASHA', 'Hyperband',
                                            'synchronous SH']
    ratios = [float(r[1]) for r in ranked]
    assert ratios == sorted(ratios)  # ranked by the paired ratio
    for _, ratio, low, high in ranked:
        assert float(low) <= float(ratio) <= float(high)
    placed = re.findall(r'^(random search|ASHA), \d+ s, (own|others) '
                        r'clock: \d+ real runs', text, re.M)
    assert sorted(placed) == sorted((m, c) for m in ('ASHA', 'random search')
                                    for c in ('others', 'own'))


def test_rung_levels_printed_are_where_asha_stops(html_build):
    text = text_of(outputs('sh-async')[1])
    m = re.search(r'rung levels: \[([\d, ]+)\] ; r_max = (\d+)', text)
    levels = [int(v) for v in m.group(1).split(',')]
    r_max = int(m.group(2))
    grace, eta = 1, 3  # as passed to ASHA in the section
    from syne_tune.optimizer.baselines import ASHA
    scheduler = ASHA(dict(hpo.tuner.search_space(), max_epochs=r_max),
                     metric='validation_error', time_attr='epoch',
                     max_t=r_max, grace_period=grace, reduction_factor=eta,
                     do_minimize=True, random_seed=0)
    assert levels == epochs_where_asha_stops(scheduler, r_max)


def test_worked_example_matches_syne_tune(html_build):
    text = text_of(outputs('sh-async')[1])
    decisions = re.findall(r'^error ([\d.]+): (CONTINUE|STOP)$', text, re.M)
    assert decisions == [('0.5', 'CONTINUE'), ('0.6', 'CONTINUE'),
                         ('0.7', 'STOP'), ('0.4', 'CONTINUE'),
                         ('0.9', 'STOP')]
    # and the table in the text says the same
    source = (ROOT / 'chapter_hpo' / 'sh-async.md').read_text()
    rows = re.findall(r'^\| ([\d.]+) \| [\d., ]+ \| \d+/\d+ \| (\w+) \|$',
                      source, re.M)
    assert [(v, d.upper()) for v, d in rows] == decisions


def test_ray_section_checked_its_decisions_and_cleaned_up(html_build):
    """The Ray section (its own checks: it runs no Syne Tune-only table)."""
    cells, outs = outputs('hpo-ray')
    assert all(c.get('execution_count') for c in cells)
    assert not [o for o in outs if o.output_type == 'error']
    text = text_of(outs)
    assert 'set-up "test' in text
    assert re.search(r'\d+ Ray nodes started on this machine', text)
    m = re.search(r'(\d+) decisions, (\d+) agree with the recomputation',
                  text)
    assert m and m.group(1) == m.group(2), text[-3000:]
    assert 'Ray processes still running: 0' in text
    assert re.search(r'stopped by Ray Tune, continued by Syne Tune +\d+',
                     text)
    # both libraries ran the seeded list in order (else the cell raises)
    assert re.search(r'configurations run in the order of the list: Ray '
                     r'Tune \d+, Syne Tune \d+ of \d+', text), text[-3000:]
    svgs = [o for o in outs if 'data' in o and 'image/svg+xml' in o.data]
    assert len(svgs) >= 1
