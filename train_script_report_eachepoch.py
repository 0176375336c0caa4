"""Train a CNN on Fashion-MNIST; report the validation error every epoch.

The same training as ``train_script.py``, but the validation error goes to
Syne Tune after every epoch (``epoch`` counts from 1), so that a scheduler
such as ASHA can stop a poor trial early. Try it by hand with
``python train_script_report_eachepoch.py --max_epochs 2``.
"""
from hpo.training import exit_now, parse_args, train

from syne_tune import Reporter

if __name__ == '__main__':
    args = parse_args(__doc__)
    report = Reporter()
    for epoch, metrics in train(args):
        report(epoch=epoch, **metrics)
    exit_now()  # skip PyTorch's slow teardown: the worker is free sooner
