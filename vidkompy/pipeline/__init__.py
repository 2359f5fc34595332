"""Prefect, and only Prefect: the stage tasks (keys and persistence), the flows, the entry the API and the
CLI share, the run report and the local server. No algorithm lives here.
"""
