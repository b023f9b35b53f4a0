"""Interesting neurons of a conv layer, traced back to the image patches that excite them.

The report's Task VII, after Zeiler & Fergus, "Visualizing and Understanding Convolutional
Networks" (ECCV 2014): the images go through the network once; for every channel of --layer
(default CONV4, the last conv layer) the k images that excite it most are kept, with the unit
where the maximum is and the input patch that unit sees, its receptive field computed from the
network's own layers (26x26 pixels for CONV4, drawn with grey where it reaches past the image
border). --count neurons are chosen automatically by class purity (the share of their top-k
images that belong to one class, ties broken by activation, at most three per class), or by
hand with --neurons. The method is analysis.neuron_figures.

    python neurons.py --run report --data-dir ../shared/data/cifar-10-jpeg
    python neurons.py --run report --layer CONV3 --neurons 3,17,40 --k 9

Writes into --out (default: the run's figures/), for the layer L:
  neurons_L.png          a row per chosen neuron: its top-k patches with class and activation
  neurons_L_classes.png  a row per CIFAR-10 class: the patches of the neuron most selective for it
  neurons_L.json, .csv   every channel's purity, dominant class and top images (to check the
                         figures), and why each neuron was chosen
"""

from __future__ import annotations

import argparse

import cli
from cli import args as flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.parser(__doc__)
    flags.add_run_arguments(p, what="figures and tables")
    flags.add_neuron_arguments(p, what="show")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    cli.start_quietly()  # after the flags: --help and a bad flag answer before TensorFlow
    from analysis.neuron_figures import neuron_figures

    paths = neuron_figures(flags.run_images(args), flags.output_folder(args),
                           flags.neuron_query(args), progress=True, log=print)
    flags.print_written(paths)


if __name__ == "__main__":
    cli.main_with_errors(main)
