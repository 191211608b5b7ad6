"""lstmkit.tasks: one module per job, each a typed config, a model, fit / predict / evaluate, save / load."""
