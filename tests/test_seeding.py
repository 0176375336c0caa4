"""The sections' seeding never makes a run try a configuration twice.

The ASHA cell of sh-async.md is executed as the book shows it; the
scheduler is then asked for configurations while trials report, as in a
real run, and every configuration must differ from all before it.
"""
import re
from datetime import datetime

import numpy as np

import hpo.setups
import hpo.trials  # noqa: F401 (the cell uses it)
import hpo.tuner
from conftest import ROOT

CELL = re.compile(r'^```\{\.python \.input\}\n(.*?)^```$', re.S | re.M)


def section_cell(section, marker):
    """The one code cell of ``section`` that contains ``marker``."""
    text = (ROOT / 'chapter_hpo' / section).read_text()
    cells = [c for c in CELL.findall(text) if marker in c]
    assert len(cells) == 1, f'{section}: {len(cells)} cells with {marker}'
    return cells[0]


def suggestions(code, n=80):
    """Run the cell's seeding and scheduler code; ``n`` configurations,
    each trial reporting at the first rung before the next is drawn."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.baselines import ASHA
    setup = hpo.setups.choose_setup('full', n_gpus=0)
    space = dict(hpo.tuner.search_space(), **setup.constants)
    scope = dict(np=np, ASHA=ASHA, hpo=hpo, config_space=space,
                 max_epochs=setup.constants['max_epochs'], print=print)
    state = np.random.get_state()
    try:
        exec(code, scope)
        scheduler, drawn = scope['scheduler'], []
        for trial_id in range(n):
            config = scheduler.suggest().config
            drawn.append(tuple(sorted(config.items())))
            trial = Trial(trial_id, config=config,
                          creation_time=datetime.now())
            scheduler.on_trial_add(trial)
            scheduler.on_trial_result(trial, {
                'epoch': 1, 'validation_error': 0.9 - 0.01 * trial_id})
    finally:
        np.random.set_state(state)
    return drawn


def test_sh_async_never_draws_a_configuration_twice():
    code = section_cell('sh-async.md', 'scheduler = ASHA(')
    drawn = suggestions(code)
    assert len(set(drawn)) == len(drawn)
    # the same cell with one seed for both generators repeats itself,
    # which is what the section's seeding avoids
    same = code.replace('random_seed=seed + 1', 'random_seed=seed')
    assert same != code
    repeated = suggestions(same)
    assert len(set(repeated)) < len(repeated)
