"""The QC report page's 补录 form: shown on a failed report, a corrupt file comes back to the
page with its reason and nothing stored, a valid backup is stored and its QC report listed."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from apps.qc.models import QcReport, Supplement
from apps.qc.selectors import failed_report
from apps.qc.tests.conftest import at
from apps.qc.tests.test_supplement import backup, failed_call  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def send(client, report, data: bytes, started: float, sha256: str | None = None):
    local = timezone.localtime(at(started)).strftime("%Y-%m-%dT%H:%M:%S")  # datetime-local
    return client.post(
        reverse("qc-supplement-form", args=[report.pk]),
        {
            "file": SimpleUploadedFile("backup.webm", data, content_type="video/webm"),
            "sha256": sha256 if sha256 is not None else hashlib.sha256(data).hexdigest(),
            "started_at": local,
        },
    )


def test_report_page_form_refuses_a_corrupt_file_and_stores_a_valid_one(
    client,
    supervisor,
    failed_call,  # noqa: F811
    backup,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    report = failed_report(failed_call)
    page_url = reverse("qc-report", args=[report.pk])
    client.force_login(supervisor)
    page = client.get(page_url).content.decode()
    assert 'id="qc-supplement-form"' in page
    assert reverse("qc-supplement-form", args=[report.pk]) in page
    assert "js/qc_supplement.js" in page

    garbage = np.random.default_rng(3).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    response = send(client, report, garbage, failed_call.t0 + 1)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{page_url}?supplement_error=corrupt")
    page = client.get(response["Location"]).content.decode()
    assert 'data-error="corrupt"' in page and "文件已损坏" in page
    assert Supplement.objects.count() == 0

    # no digest (the page's script did not run): refused, not stored unchecked
    response = send(client, report, backup, failed_call.t0 + 1, sha256="")
    assert "supplement_error=bad_digest" in response["Location"]
    response = client.post(reverse("qc-supplement-form", args=[report.pk]), {"sha256": "0" * 64})
    assert "supplement_error=no_file" in response["Location"]
    assert Supplement.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, report, backup, failed_call.t0 + 1)
    supplement = Supplement.objects.get()
    assert response["Location"] == f"{page_url}?supplement={supplement.pk}#qc-supplements"
    assert supplement.uploaded_by == supervisor
    assert supplement.sha256 == hashlib.sha256(backup).hexdigest()
    assert QcReport.objects.filter(supplement=supplement).exists()
    page = client.get(response["Location"]).content.decode()
    assert f'data-supplement="{supplement.pk}"' in page and 'id="qc-supplement-done"' in page


def test_no_form_on_a_supplement_report_or_for_someone_who_may_not_upload(
    client,
    supervisor,
    auditor,
    failed_call,  # noqa: F811
):
    report = failed_report(failed_call)
    client.force_login(supervisor)
    QcReport.objects.filter(pk=report.pk).update(verdict="pass")
    assert (
        'id="qc-supplement-form"'
        not in client.get(reverse("qc-report", args=[report.pk])).content.decode()
    )
    QcReport.objects.filter(pk=report.pk).update(verdict="fail")
    client.force_login(auditor)
    response = client.post(reverse("qc-supplement-form", args=[report.pk]), {})
    assert response.status_code == 404  # auditors do not see QC report pages
