"""A record's memo (workloads' `lastGood`) in the state file and its journal: format 1 both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.core.model import OwnershipRecord, ResourceKey
from reconciler.errors import ReconcilerError
from reconciler.state import FileStateStore, decode_records, encode_records

KEY = ResourceKey("workloads", "image", "ingestion@deployment/dagster-user-code-ingestion/user-code")
GOOD = "ghcr.io/acme/dagster-ingestion:2026.11.18"


def test_a_state_file_written_before_memos_reads_with_empty_memos() -> None:
    old = {"formatVersion": 1, "environment": "qa", "resources": {str(KEY): {"id": "x", "fingerprints": {}}}}
    assert decode_records(json.dumps(old), "old.json", "qa")[KEY] == OwnershipRecord(KEY, "x", {}, {})


def test_a_memo_is_an_extra_key_only_when_set_and_round_trips() -> None:
    plain = json.loads(encode_records("qa", {KEY: OwnershipRecord(KEY, "x")}))
    assert plain["formatVersion"] == 1 and "memo" not in plain["resources"][str(KEY)]  # byte-for-byte as before
    text = encode_records("qa", {KEY: OwnershipRecord(KEY, "x", {}, {"lastGood": GOOD})})
    assert json.loads(text)["formatVersion"] == 1
    assert decode_records(text, "qa.json", "qa")[KEY].memo == {"lastGood": GOOD}


def test_a_memo_written_to_the_journal_survives_a_kill_and_the_fold(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "qa.json", "qa")
    store.record(KEY, OwnershipRecord(KEY, "x", {}, {"lastGood": GOOD}))  # no compact: as if killed here
    assert FileStateStore(tmp_path / "qa.json", "qa").load()[KEY].memo == {"lastGood": GOOD}
    store.compact()
    assert FileStateStore(tmp_path / "qa.json", "qa").load()[KEY].memo == {"lastGood": GOOD}


def test_a_memo_that_is_not_an_object_is_refused() -> None:
    bad = {"formatVersion": 1, "environment": "qa", "resources": {str(KEY): {"id": "x", "memo": ["x"]}}}
    with pytest.raises(ReconcilerError, match="memo is not an object"):
        decode_records(json.dumps(bad), "bad.json", "qa")
