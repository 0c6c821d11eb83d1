"""Unlearning methods, one per file; ``conf/method/<name>.yaml`` is the registry.

A method is a function ``unlearn(model, ctx, *, **hyperparameters)`` that returns the unlearned
model (or a :class:`MethodOutput`). It receives a deep copy of the original and may change it;
``ctx`` is cut to the data access its YAML declares (``runner.access``). Its keyword-only
parameters are its hyperparameters: their annotations are the allowed types and ranges.
"""

from .base import MethodContext, MethodOutput

__all__ = ["MethodContext", "MethodOutput"]
