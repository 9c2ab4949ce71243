"""Inventory: what each repo holds, polled from the clouds, and the image matrix built from it."""
