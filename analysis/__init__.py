"""Analysis methods on any Keras model of the report's network, one module per method:
activations and top-k (activations.py), receptive fields (receptive_field.py), gradient maps
(guided.py), SmoothGrad (smoothgrad.py), Grad-CAM (gradcam.py), activation maximization
(activation_max.py) and the sanity check (sanity.py); and a figures module beside each: filters
(filters.py, Task VI), neurons' top patches (neuron_figures.py, Task VII), gradient maps
(guided_figures.py, Task VII), gradcam_figures.py, activation_max_figures.py and
sanity_figures.py. Shared by the figures: what they read and loading it (inputs.py), which
neurons to show and why (selection.py), tiling images into a grid and saving figures
(figures.py), the methods' names and defaults (choices.py).

No command-line notions here; the scripts in the root call these. Each figure function takes
what it reads as an inputs.RunImages (a run, its weights and images) and, where it shows neurons,
an inputs.NeuronQuery, and returns the paths it wrote:

    from analysis.inputs import NeuronQuery, RunImages
    from analysis.neuron_figures import neuron_figures

    neuron_figures(RunImages("report", images=2000), Path("out"), NeuronQuery(layer="CONV3"))
"""


class AnalysisError(ValueError):
    """An analysis was asked for something the network or the data does not have."""
