"""Analysis methods on any Keras model of the report's network, one module per method:
activations and top-k (activations.py), receptive fields (receptive_field.py), gradient maps
(guided.py); and their figures: filters (filters.py, Task VI), neurons' top patches
(neurons.py) and gradient maps (guided_figures.py, Task VII). Shared by the figures: the run's
network and images (inputs.py), which neurons to show and why (selection.py), tiling images into
a grid and saving figures (figures.py). No command-line notions here; scripts in the root call
these."""


class AnalysisError(ValueError):
    """An analysis was asked for something the network or the data does not have."""
