"""export_evidence + the standalone verifier, run as a separate process with Django unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit import hooks, signing
from apps.audit.audited import SYSTEM
from apps.audit.models import AuditEvent
from apps.audit.tests.conftest import TOOL, append
from apps.audit.tests.support import append_event
from apps.calls.actions.queue import join_queue
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket

pytestmark = pytest.mark.django_db

# The tool must run with no Django at all: make importing it fail in the child.
RUNNER = (
    "import runpy, sys; sys.modules['django'] = None; "
    "sys.argv = [sys.argv[1], *sys.argv[2:]]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_tool(*args):
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def call(api_client_obj):
    ticket, token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="EVID0001",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
        ip="198.51.100.7",
    )
    redeem_entry_ticket(token=token, ip="198.51.100.7")
    return join_queue(ticket_id=ticket.pk, location=None, ip="2001:DB8::7")


@pytest.fixture
def public_key():
    return signing.signing_key().public_key


def export(call, path):
    call_command("export_evidence", call.number, "-o", str(path), "--reason", "test")
    return path


def add_call_events(call, n):
    for i in range(n):
        append_event(
            action="test.call_step",
            actor=SYSTEM,
            object_type="call_step",
            object_id=i,
            call_id=call.pk,
            after={"step": i},
            details={"i": i, "备注": "第二步"},
        )


def load(path):
    return json.loads((path / "evidence.json").read_text())


def save(path, bundle):
    (path / "evidence.json").write_text(json.dumps(bundle, ensure_ascii=False))


def test_exported_zip_verifies_offline(call, tmp_path, public_key, checkpoint_now):
    append(10)
    add_call_events(call, 3)
    checkpoint_now()
    append(40)  # unrelated traffic
    add_call_events(call, 2)
    checkpoint_now()
    append(5)  # after the last checkpoint: export signs a new one
    add_call_events(call, 1)

    path = export(call, tmp_path / "bundle.zip")
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"evidence.json", "README.txt"}
        bundle = json.loads(zf.read("evidence.json"))
    expected = AuditEvent.objects.filter(call_id=call.pk).exclude(action="evidence.exported")
    assert [e["seq"] for e in bundle["events"]] == list(expected.values_list("seq", flat=True))
    assert len(bundle["events"]) >= 7
    assert [c["tree_size"] for c in bundle["checkpoints"]][-1] == bundle["tree_size"]
    assert len(bundle["checkpoints"]) == 3
    assert len(bundle["consistency"]) == 2
    assert bundle["public_keys"] == [
        {"key_id": signing.signing_key().key_id, "public_key": public_key}
    ]

    code, out = run_tool(path, "--public-key", public_key)
    assert code == 0, out
    assert out.startswith("OK: call " + call.number)
    assert f"{len(bundle['events'])} event(s)" in out

    # The export itself is audited, with the bundle's digest.
    exported = AuditEvent.objects.get(action="evidence.exported")
    assert exported.call_id == call.pk
    assert len(exported.details["bundle_sm3"]) == 64


def test_export_by_call_id_to_a_directory(call, tmp_path, public_key):
    call_command("export_evidence", str(call.pk), "-o", str(tmp_path / "dir"))
    code, out = run_tool(tmp_path / "dir", "--public-key", public_key)
    assert code == 0, out
    code, out = run_tool(tmp_path / "dir" / "evidence.json")
    assert code == 0, out
    assert "not pinned" in out


def test_unknown_call_is_refused(tmp_path):
    with pytest.raises(CommandError, match="no call"):
        call_command("export_evidence", "NO-SUCH-CALL", "-o", str(tmp_path / "x.zip"))


@pytest.fixture
def bundle_dir(call, tmp_path, checkpoint_now):
    add_call_events(call, 3)
    checkpoint_now()
    append(9)
    add_call_events(call, 2)
    return export(call, tmp_path / "b")


def tampered(bundle_dir, change):
    bundle = load(bundle_dir)
    change(bundle)
    save(bundle_dir, bundle)
    return bundle_dir


def flip_hex(value):
    return value[:-1] + ("0" if value[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda b: b["events"][1]["body"]["details"].update(i=99),
            "entry_hash does not match",
        ),
        (
            lambda b: b["events"][0]["body"].update(at="2020-01-01T00:00:00+00:00"),
            "entry_hash does not match",
        ),
        (lambda b: b["events"].__setitem__(1, {**b["events"][1], "seq": 10**6}), "malformed"),
        (
            lambda b: b["events"][-1]["inclusion"]["proof"].__setitem__(
                0, flip_hex(b["events"][-1]["inclusion"]["proof"][0])
            ),
            "inclusion proof does not verify",
        ),
        (
            lambda b: b["checkpoints"][0].update(
                signature=flip_hex(b["checkpoints"][0]["signature"])
            ),
            "bad SM2 signature",
        ),
        (
            lambda b: b["checkpoints"][-1].update(timestamp=b["checkpoints"][-1]["timestamp"] + 1),
            "bad SM2 signature",
        ),
        (
            lambda b: b["consistency"][0]["proof"].__setitem__(
                0, flip_hex(b["consistency"][0]["proof"][0])
            ),
            "consistency",
        ),
        (lambda b: b["consistency"].clear(), "proof missing"),
        (lambda b: b["checkpoints"].pop(0), "does not name the checkpoint before it"),
        (
            lambda b: b.update(call={**b["call"], "id": "00000000-0000-0000-0000-000000000000"}),
            "not an event of call",
        ),
    ],
)
def test_a_tampered_bundle_fails(bundle_dir, public_key, change, message):
    code, out = run_tool(bundle_dir, "--public-key", public_key)
    assert code == 0, out
    code, out = run_tool(tampered(bundle_dir, change), "--public-key", public_key)
    assert code == 1
    assert out.startswith("FAIL:")
    assert message in out


def test_a_bundle_signed_by_another_key_fails_when_the_key_is_pinned(bundle_dir):
    other = signing.key_from_private("5" * 64)
    code, out = run_tool(bundle_dir, "--public-key", other.public_key)
    assert code == 1
    assert "untrusted key" in out


def test_an_unreadable_bundle_is_exit_code_2(tmp_path):
    (tmp_path / "evidence.json").write_text("{not json")
    code, out = run_tool(tmp_path)
    assert code == 2
    assert "cannot read" in out


def test_contributed_digests_must_be_anchored_in_the_call_events(call, tmp_path, public_key):
    digest = "ab" * 32
    anchor = append_event(
        action="recording.sealed",
        actor=SYSTEM,
        object_type="recording",
        object_id="rec-1",
        call_id=call.pk,
        details={"sm3": digest},
    )

    def recordings(c):
        assert c == call
        return [{"kind": "recording", "id": "rec-1", "sm3": digest, "anchor_seq": anchor.seq}]

    hooks.register_bundle_contributor(recordings, name="test-recordings")
    try:
        path = export(call, tmp_path / "b")
    finally:
        hooks.unregister("test-recordings")
    assert load(path)["contributions"]["test-recordings"][0]["sm3"] == digest
    code, out = run_tool(path, "--public-key", public_key)
    assert code == 0, out
    assert "1 anchored digest(s)" in out

    bundle = load(path)
    bundle["contributions"]["test-recordings"][0]["sm3"] = "cd" * 32
    save(path, bundle)
    code, out = run_tool(path, "--public-key", public_key)
    assert code == 1
    assert "digest is not the one recorded" in out
