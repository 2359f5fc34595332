"""Prefect flows: they only wire the stage tasks of `tasks/`."""
