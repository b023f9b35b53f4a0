"""Analysis methods shared by the scripts: layer activations, receptive fields, filter images."""
