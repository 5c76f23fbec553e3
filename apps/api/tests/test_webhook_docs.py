"""The copy-paste receiver of docs/webhooks.md works: run as written (a subprocess with the
endpoint's secret), it accepts real deliveries (both signatures) once per webhook-id and
refuses a forged one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from apps.api.delivery import deliver_endpoint
from apps.api.models import WebhookDelivery
from apps.api.tests.test_webhook_retries import qc_completed
from tests.live import free_port

pytestmark = pytest.mark.django_db

DOC = Path(settings.BASE_DIR) / "docs" / "webhooks.md"


def receiver_code() -> str:
    text = DOC.read_text()
    after = text.split("<!-- receiver:", 1)[1]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match, "the receiver's code block"
    return match.group(1)


def test_the_documented_receiver_verifies_real_deliveries(signed, tmp_path):
    script = tmp_path / "receiver.py"
    script.write_text(receiver_code())
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/rb"
    created = signed(
        "POST", "/api/v1/webhook-endpoints", {"url": url, "events": ["qc.completed"]}
    ).json()
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env={"WEBHOOK_SECRET": created["secret"], "PORT": str(port), "PATH": "/usr/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
            except urllib.error.HTTPError:
                break  # it answers (501 for GET): up
            except OSError:
                time.sleep(0.1)
        qc_completed()
        qc_completed()
        assert deliver_endpoint(created["endpoint_id"]) == 2
        # The same message again (a replay): acknowledged, not processed twice.
        WebhookDelivery.objects.filter(endpoint_id=created["endpoint_id"]).update(state="pending")
        assert deliver_endpoint(created["endpoint_id"]) == 2
        forged = urllib.request.Request(
            url,
            data=b'{"type":"qc.completed","data":{}}',
            headers={
                "webhook-id": "msg_forged",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAA v1-sm3,AAAA",
                "Content-Length": "33",
            },
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 401
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [line["type"] for line in lines] == ["qc.completed", "qc.completed"], err
    assert len({line["id"] for line in lines}) == 2
    assert all(uuid.UUID(line["data"]["report_id"]) for line in lines)
