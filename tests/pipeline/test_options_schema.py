"""The flows take the options as one typed parameter, and a deployment's run form shows its fields."""

from __future__ import annotations

import dataclasses

import pytest
from prefect.utilities.callables import parameter_schema

from vidkompy.options import Options
from vidkompy.pipeline.batch_flow import batch
from vidkompy.pipeline.compose_flow import compose

JSON_TYPES = {int: "integer", bool: "boolean", str: "string"}


@pytest.mark.parametrize("flow", [compose, batch])
def test_the_run_form_shows_every_option_with_its_type_and_default(flow):
    schema = parameter_schema(flow.fn).model_dump()
    assert schema["properties"]["options"]["$ref"] == "#/definitions/Options"
    fields = schema["definitions"]["Options"]["properties"]
    assert set(fields) == set(Options.names())
    for f in dataclasses.fields(Options):
        assert fields[f.name]["default"] == f.default, f.name
    assert fields["border"]["type"] == "integer" and fields["blend"]["type"] == "boolean"
    assert {t["type"] for t in fields["cache_dir"]["anyOf"]} == {"string", "null"}
    assert {t["type"] for t in fields["segments"]["anyOf"]} == {"integer", "string"}


def test_a_deployment_s_json_parameters_become_the_options_value():
    """What `prefect deployment run -p options=...` and run_deployment send is validated into Options."""
    from prefect.flows import Flow

    assert isinstance(compose, Flow)
    bound = compose.validate_parameters({"bg": "b.mp4", "fg": "f.mp4",
                                         "options": {"codec": "ffv1", "segments": "auto", "border": 3}})
    assert bound["options"] == Options(codec="ffv1", segments="auto", border=3)
