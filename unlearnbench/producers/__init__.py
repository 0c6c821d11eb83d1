"""Producers: how a role's weights are made (dense training, pruning, Amnesiac's recording,
SISA's shards). They stack: a role's cache key is the key of what it wraps plus its own."""
