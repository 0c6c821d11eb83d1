"""Metric families. A per-model metric is ``f(model, env, batch_size, **params) -> {column:
value}``, listed with its parameters in ``conf/eval/*.yaml``; per-example metrics are pure
functions of arrays."""
