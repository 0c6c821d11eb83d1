"""Reports built from finished jobs' files: sweep summaries, the leaderboard and its plots.
They read results and the schema, never torch."""
