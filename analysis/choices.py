"""The analyses' method names and defaults, without Keras: the scripts build their flags from them
before TensorFlow loads, and each analysis module takes its own from here."""

# Guided backpropagation and its kin (analysis.guided): the gradient rules, and the two ways of
# showing a map: signed colour centred at grey, or the largest absolute value over the channels.
GRADIENT_METHODS = ("guided", "saliency", "deconvnet")
MAP_STYLES = ("signed", "abs")
RENDERS = ("standard", *MAP_STYLES)  # standard: each method's usual style (guided.STANDARD_STYLE)

# The filters' figures (analysis.filters): the images whose mean activation each filter shows.
FILTER_IMAGES = 1000

# Activation maximization (analysis.activation_max).
OBJECTIVES = ("mean", "centre")
STEPS = 256
JITTER = 2  # pixels, about lucid's 8 of 224 scaled up for 32-pixel images

# The cascading randomization sanity check (analysis.sanity): the maps it compares, and on how
# many images (Adebayo et al. compare on a fixed set of images; a few suffice for the means).
SANITY_METHODS = ("saliency", "guided", "deconvnet", "gradcam", "guided-gradcam")
SANITY_IMAGES = 16
