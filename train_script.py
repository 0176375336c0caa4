"""Train a CNN on Fashion-MNIST; report the validation error once, at the end.

Syne Tune's ``LocalBackend`` runs this script once per trial, passing the
hyperparameters as ``--name value`` arguments. Try it by hand with
``python train_script.py --learning_rate 0.1 --max_epochs 2``.
"""
from hpo.training import exit_now, parse_args, train

from syne_tune import Reporter

if __name__ == '__main__':
    args = parse_args(__doc__)
    for epoch, metrics in train(args):
        print(f'epoch {epoch}: {metrics}', flush=True)
    report = Reporter()
    report(epoch=epoch, **metrics)  # the last epoch, with the test error
    exit_now()  # skip PyTorch's slow teardown: the worker is free sooner
