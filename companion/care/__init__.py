"""Aftercare content and rules: regions, triage, guidance. Plain data plus small pure functions."""
