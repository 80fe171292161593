"""The alliance service's OpenAPI document: valid, and documenting the shape of the answers the
unit, cluster roster and task board endpoints really give."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from services.alliance.service import AllianceService
from tests.conftest import Api, new_id
from tests.test_alliance import (
    ADMIN,
    DISTRICT,
    A,
    form_cluster,
    found_alliance,
    join,
    ok,
    register_village,
)
from tests.test_alliance_tasks import assign, cadre, progress, sweep

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def api(start_services: Any) -> Api:
    return start_services(AllianceService)


def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with every documented object closed: an answer with a field the document does not
    name fails validation, as does one missing a field it requires."""
    closed = copy.deepcopy(spec)
    for schema in closed["components"]["schemas"].values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    return closed


def _validator(spec: dict[str, Any], path: str) -> Draft202012Validator:
    operation = spec["paths"][path]["get"]
    content = operation["responses"]["200"]["content"]["application/json"]
    ref = content["schema"]["$ref"]
    assert ref.startswith("#/components/schemas/"), content
    resource = Resource.from_contents(_closed(spec), default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:clustergov:alliance", resource)
    return Draft202012Validator({"$ref": f"urn:clustergov:alliance{ref}"}, registry=registry)


def _conforms(validator: Draft202012Validator, answer: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer)]
    assert not errors, errors


def test_openapi_documents_the_answers_the_endpoints_give(api: Api) -> None:
    spec = ok(api.get(f"{A}/openapi.json", role=None), 200)
    validate(spec)
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if operation["operationId"] in vars(AllianceService)  # not the foundation's own
        for code, answer in operation["responses"].items()
        if code.startswith("2") and "content" not in answer
    ]
    assert not undocumented, undocumented

    cluster = form_cluster(api, found_alliance(api))
    village = register_village(api)
    ok(join(api, village, cluster, "2025-12-01"))
    bank = new_id("B")
    bank_body = {
        "id": bank,
        "district": DISTRICT,
        "name": "农商行",
        "unit_type": "bank",
        "bank_code": "RCB01",
    }
    ok(api.post(f"{A}/units", bank_body, **ADMIN))
    ok(join(api, bank, cluster, "2025-12-15"))
    village_task = ok(assign(api, cluster, village))["task_id"]
    ok(assign(api, cluster, None, id=new_id("T"), deadline_on="2026-03-01"))
    ok(progress(api, village_task, "30", cadre(village)))
    sweep(api, "2026-01-09")

    unit = ok(api.get(f"{A}/units/{village}?on=2026-01-05"), 200)
    roster = ok(api.get(f"{A}/clusters/{cluster}/roster?on=2026-01-05"), 200)
    board = ok(api.get(f"{A}/clusters/{cluster}/tasks"), 200)
    assert unit["clusters"] == [cluster] and unit["village"]["weak"] is True
    assert [m["unit_id"] for m in roster["members"]] == sorted([village, bank])
    assert {t["unit_id"] for t in board["tasks"]} == {village, None}
    assert all(t["schedule_as_of"] == "2026-01-09" for t in board["tasks"]), board

    _conforms(_validator(spec, f"{A}/units/{{unit_id}}"), unit)
    _conforms(_validator(spec, f"{A}/clusters/{{cluster_id}}/roster"), roster)
    _conforms(_validator(spec, f"{A}/clusters/{{cluster_id}}/tasks"), board)


def test_the_closed_schemas_catch_an_undocumented_or_missing_field(api: Api) -> None:
    spec = ok(api.get(f"{A}/openapi.json", role=None), 200)
    roster = _validator(spec, f"{A}/clusters/{{cluster_id}}/roster")
    answer = {"cluster_id": "C", "on": "2026-01-05", "members": []}
    _conforms(roster, answer)
    assert not roster.is_valid({**answer, "extra": 1})
    assert not roster.is_valid({"cluster_id": "C", "members": []})
