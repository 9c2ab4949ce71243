"""Repos: the cloud projects of a group, with their encrypted credentials."""
