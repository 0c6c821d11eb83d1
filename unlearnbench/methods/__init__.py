"""Unlearning methods, one per file; ``conf/method/<name>.yaml`` is the registry.

A method is a function ``unlearn(model, ctx, **hyperparameters)`` that returns the unlearned
model (or a :class:`MethodOutput`). It receives a deep copy of the original and may change it.
"""

from .base import MethodOutput, UnlearnContext

__all__ = ["MethodOutput", "UnlearnContext"]
