"""Inventory: what each repo holds, polled from the clouds, and people's choices about its rows.

Polling and storage only: the matrix built from it is ``glint.matrix`` (the rules) and
``glint.jobs.matrix`` (reading it all from the database).
"""
