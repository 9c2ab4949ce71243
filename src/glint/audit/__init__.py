"""Audit: a write-once record of every state-changing action."""
