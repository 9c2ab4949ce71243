"""Accounts: people by certificate DN, groups, and each person's role in a group."""
