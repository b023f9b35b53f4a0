"""Training machinery: precision and devices, the compiled model, callbacks, the run itself."""
