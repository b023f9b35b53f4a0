"""Train the report's CIFAR-10 network from the shell; each run gets its own folder under logs/.

    python train.py --data-dir ../shared/data/cifar-10-jpeg --run report
    python train.py --run report --resume          # continue an interrupted run

The run folder holds config.json (every setting, data source, seed, versions), history.csv (one
row per epoch: learning rate, train/val/test loss and accuracy, seconds), train.log (the lines
printed here, added to by each resume), best.weights.h5 (best
validation accuracy), last.weights.h5, checkpoint.keras (weights, optimizer and schedule state,
for --resume) and tensorboard/ (event files). Every file is written atomically, and
checkpoint.keras commits each epoch, so a killed run loses at most the current epoch. One training
at a time writes a run folder. SIGTERM and Ctrl-C stop after the current epoch's files, and a
write the disk has no room for is refused before it starts, each in one line with the command
that continues the run. --resume takes the command that started the run again: a setting may be
repeated, but only --epochs (not for a cosine schedule) and --data-dir may change.
"""

from __future__ import annotations

import sys

import cli
from cli.training import train_main

if __name__ == "__main__":
    cli.main_with_errors(lambda: train_main(sys.argv[1:], doc=__doc__, prog=sys.argv[0]))
