"""The generative unlearning methods as pure functions of (model, frozen original, forget
images, retain images, hyperparameters, seed, device); one method per file."""
