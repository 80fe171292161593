"""Event contracts: the committed JSON Schemas match the code, and real envelopes match them."""

from __future__ import annotations

import subprocess
import sys

import jsonschema

from shared import contracts
from tests.conftest import Api
from tests.sample import AmountDeposited, LedgerOpened


def test_committed_contracts_match_the_event_schemas() -> None:
    assert contracts.stale() == [], "run `clustergov events export` and commit docs/events"


def test_events_export_check_fails_on_a_stale_contract(tmp_path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "shared.cli", "events", "export", "--check"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    service = "alliance"
    contracts.export(tmp_path, (service,))
    written = sorted((tmp_path / service).glob("*.json"))
    if written:  # a service with events: tampering with one file is reported
        written[0].write_text("{}\n")
        assert contracts.stale(tmp_path, (service,)) == [
            f"{service}/{written[0].name}: differs from the code"
        ]


def test_stored_envelopes_validate_against_their_contract(api: Api) -> None:
    ledger = "L-contract"
    assert api.post("/api/v1/sample/ledgers", {"id": ledger, "owner": "a", "district": "D1"}).ok
    assert api.post(f"/api/v1/sample/ledgers/{ledger}/deposits", {"amount_fen": 5}).ok
    opened, deposited = api.events()
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.validate(
        opened, contracts.envelope_schema("sample", LedgerOpened), format_checker=checker
    )
    jsonschema.validate(
        deposited, contracts.envelope_schema("sample", AmountDeposited), format_checker=checker
    )
    wrong = dict(deposited, data={"amount_fen": "5"})
    try:
        jsonschema.validate(wrong, contracts.envelope_schema("sample", AmountDeposited))
    except jsonschema.ValidationError as exc:
        assert "amount_fen" in str(exc.path) or "'5'" in exc.message
    else:
        raise AssertionError("a string amount must break the contract")
