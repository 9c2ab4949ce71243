"""Plans: a person's matrix changes, decided against a fresh inventory, then applied as jobs."""
