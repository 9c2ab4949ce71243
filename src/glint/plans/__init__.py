"""Plans: the matrix pages, and a person's changes on them, decided against a fresh inventory,
then applied as jobs."""
