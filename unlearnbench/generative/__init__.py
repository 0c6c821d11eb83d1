"""Image-to-image generative unlearning (Li et al., ICLR 2024): inpainting models, the i2i
encoder method and its baselines, and metrics in a judge classifier's feature space."""
