"""Every test here runs Prefect (a flow, the API or the CLI): they share the session's one server."""

import pytest


@pytest.fixture(autouse=True)
def _prefect(prefect_server):
    return prefect_server
