"""Every page a person sees, in both languages (issue 13): the crawl walks the URL resolver,
renders each customer and staff page as the role that uses it, with a call, a transaction, key
points, a recording, QC reports and a download request behind it, and reads the visible text
(text nodes, plus the attributes a person reads: title, placeholder, aria-label, alt, button
values and the `data-label-*` sentences scripts show). In Chinese no English word may appear
beyond brand and unit names; in English no Chinese character may remain. The error catalogue
the pages load (/jsi18n/errors.js) is read the same way.

A URL pattern the crawl does not know fails the test: a new page is crawled or skipped with a
reason here, never missed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone, translation

from apps.audit.audited import Actor
from apps.banking.actions import identity
from apps.banking.actions.transactions import add_event
from apps.banking.tests.conftest import connect_call
from apps.calls.actions.hold import set_hold
from apps.calls.actions.invites import invite_guest
from apps.calls.actions.monitor import set_monitor_mode, start_monitor
from apps.calls.actions.share import start_share, stop_share
from apps.calls.actions.tickets import issue_entry_ticket, redeem_entry_ticket
from apps.calls.models import Participant
from apps.qc.actions import runs
from apps.qc.actions.live_alerts import vision_event
from apps.qc.tests.test_auto_qc import add_transaction
from apps.qc.tests.test_misses_and_pages import finished_report, ready_recording
from apps.recordings.actions.downloads import request_download
from apps.recordings.actions.health import recording_degraded, recording_resumed
from apps.recordings.actions.keypoints import mark_key_point
from apps.recordings.actions.retention import set_legal_hold
from apps.recordings.models import Recording, RecordingState

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
ENROLLING_PASSWORD = "x-crawl-enrol-pw-1"
GUEST = "周八"

# Names a Chinese page may show as they are: the brand, ciphers and standards, formats, units.
ALLOWED_ENGLISH = {
    "RB", "RemoteBank", "AES", "SM2", "SM3", "SM4", "RSA", "GCM", "CBC", "ECDSA", "HMAC",
    "DTLS", "SRTP", "TLS", "HTTPS", "WebRTC", "TOTP", "OTP", "PIN", "ID", "API", "SDK", "REST",
    "OpenAPI", "JSON", "URL", "H5", "OCR", "MP4", "WebM", "PDF", "PNG", "JPEG", "VP8", "Opus",
    "MOS", "RTT", "fps", "kbit", "kbps", "ms", "MB", "KB", "GB", "MiB", "KiB", "GiB", "Hz", "kHz",
    "dB", "dBFS", "Chrome", "Edge", "Safari", "Firefox", "UTC", "https",
}  # fmt: skip
# The same for names that are more than one word: standards, HTTP headers.
ALLOWED_PHRASES = ("GB/T", "GM/T", "Idempotency-Key", "DTLS-SRTP")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60]+")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Data, not words: UUIDs, digests and other long hex, URLs, e-mail addresses, ISO times.
NOT_WORDS = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b[0-9a-fA-F]{16,}\b|https?://\S+|\S+@\S+\.\w+|\d{4}-\d\d-\d\dT[\d:.+-]+Z?"
)
VISIBLE_ATTRS = {"title", "placeholder", "aria-label", "alt"}
SKIPPED_ELEMENTS = {"script", "style"}
VOID_ELEMENTS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
# Placeholders a script or the translation fills in: %(name)s, {name}.
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


class VisibleText(HTMLParser):
    """Text a person can read in the page's language: text nodes outside <script>/<style>,
    and visible attributes. An element that declares another language (`lang`, as the
    language menu names each language in itself) or says it is an identifier
    (`translate="no"`: the audit log's record names) is left out with all it holds."""

    def __init__(self, language: str) -> None:
        super().__init__(convert_charrefs=True)
        self.language = language.lower()
        self.parts: list[str] = []
        self._skip = 0
        self._aside: tuple[str, int] | None = None  # (tag, depth) of an element left out

    def _set_aside(self, tag: str, values: dict[str, str | None]) -> bool:
        if self._aside is not None:
            if tag == self._aside[0]:
                self._aside = (tag, self._aside[1] + 1)
            return True
        lang = (values.get("lang") or "").lower()
        if (lang and not lang.startswith(self.language[:2])) or values.get("translate") == "no":
            if tag not in VOID_ELEMENTS:
                self._aside = (tag, 1)
            return True
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_ELEMENTS:
            self._skip += 1
        values = dict(attrs)
        if self._set_aside(tag, values):
            return
        for name, value in attrs:
            if value and (name in VISIBLE_ATTRS or name.startswith("data-label")):
                self.parts.append(value)
        if tag == "input" and values.get("type") in ("submit", "button", "reset"):
            self.parts.append(values.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_ELEMENTS and self._skip:
            self._skip -= 1
        if self._aside is not None and tag == self._aside[0]:
            depth = self._aside[1] - 1
            self._aside = (tag, depth) if depth else None

    def handle_data(self, data: str) -> None:
        if not self._skip and self._aside is None and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str, language: str = "zh-hans") -> list[str]:
    parser = VisibleText(language)
    parser.feed(html)
    parser.close()
    return parser.parts


def english_words(text: str, data: set[str]) -> list[str]:
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    text = PLACEHOLDER.sub(" ", NOT_WORDS.sub(" ", text))
    for phrase in ALLOWED_PHRASES:
        text = text.replace(phrase, " ")
    found = []
    for word in WORD.findall(text):
        if any(c.isdigit() for c in word) and "_" not in word:
            continue  # numbers and references (DEMO0001, A001); a code has an underscore
        if len(word) < 2 and "_" not in word:
            continue
        if word not in ALLOWED_ENGLISH:
            found.append(word)
    return found


def chinese_leftovers(text: str, data: set[str]) -> list[str]:
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    return CJK.findall(text)


# --- what the crawl visits -------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, User]
    call: Any
    transaction: Any
    recording: Any
    failed_recording: Any
    report: Any
    failed_report: Any
    used_token: str
    guest_token: str
    # Personal and place names from the database: shown as entered, in any language.
    data: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Visit:
    role: str  # a demo username, "customer", or "" for nobody signed in
    path: Callable[[World], str]
    status: int = 200
    query: str = ""
    form: dict[str, str] | None = None  # POSTed instead of a GET


def fixed(name: str, *args: Any) -> Callable[[World], str]:
    return lambda world: reverse(name, args=args)


# name -> visits. Each page is seen by the roles that use it, and by one that may not (the
# refusal page is a page too).
PAGES: dict[str, list[Visit]] = {
    "login": [
        Visit("", fixed("login")),
        Visit("", fixed("login"), query="expired=1"),
        Visit("", fixed("login"), form={"username": "agent01", "password": "not-the-password"}),
    ],
    "login-otp-enrol": [Visit("enrolling", fixed("login-otp-enrol"))],
    "otp-settings": [Visit("agent01", fixed("otp-settings"))],
    "customer-enter": [
        Visit("", lambda w: reverse("customer-enter", args=["no-such-ticket"]), status=404),
        Visit("", lambda w: reverse("customer-enter", args=[w.used_token]), status=410),
    ],
    "guest-enter": [
        Visit("", lambda w: reverse("guest-enter", args=["no-such-invite"]), status=404),
        Visit("", lambda w: reverse("guest-enter", args=[w.guest_token]), status=302),
    ],
    "customer-call": [
        Visit("guest", fixed("customer-call")),
        Visit("customer", fixed("customer-call")),
        Visit("", fixed("customer-call"), status=403),
    ],
    "agent-workstation": [
        Visit("agent01", fixed("agent-workstation")),
        Visit("supervisor01", fixed("agent-workstation"), status=403),
    ],
    "supervisor-monitor": [
        Visit("supervisor01", fixed("supervisor-monitor")),
        Visit("agent01", fixed("supervisor-monitor"), status=403),
    ],
    "demo-mobile-bank": [Visit("", fixed("demo-mobile-bank"))],
    "wallboard": [Visit("supervisor01", fixed("wallboard"))],
    "audit-log": [
        Visit("auditor01", fixed("audit-log")),
        Visit("auditor01", fixed("audit-log"), query="verify=1"),
        Visit("agent01", fixed("audit-log"), status=403),
    ],
    "recording-list": [
        Visit("agent01", fixed("recording-list")),
        Visit("qc01", fixed("recording-list")),
    ],
    "recording-playback": [
        Visit("auditor01", lambda w: reverse("recording-playback", args=[w.failed_recording.pk])),
        Visit("auditor01", lambda w: reverse("recording-playback", args=[w.recording.pk])),
        Visit("agent01", lambda w: reverse("recording-playback", args=[w.recording.pk])),
    ],
    "qc-reports": [Visit("qc01", fixed("qc-reports"))],
    "qc-report": [
        Visit("qc01", lambda w: reverse("qc-report", args=[w.report.pk])),
        Visit("qc01", lambda w: reverse("qc-report", args=[w.failed_report.pk])),
        Visit(
            "qc01", lambda w: reverse("qc-report", args=[w.report.pk]), query="error=not_in_review"
        ),
        Visit(
            "qc01",
            lambda w: reverse("qc-report", args=[w.failed_report.pk]),
            query="supplement_error=too_large",
        ),
    ],
    "qc-misses": [Visit("qc01", fixed("qc-misses"))],
    "qc-queue": [Visit("qc01", fixed("qc-queue"))],
    "qc-stats": [Visit("supervisor01", fixed("qc-stats"))],
    "admin:index": [Visit("supervisor01", fixed("admin:index"))],
    "admin:calls_call_changelist": [Visit("supervisor01", fixed("admin:calls_call_changelist"))],
    "admin:banking_transaction_changelist": [
        Visit("auditor01", fixed("admin:banking_transaction_changelist"))
    ],
}

SKIPPED: dict[str, str] = {
    "home": "redirects to the workstation",
    "admin-login": "redirects to the staff sign-in",
    "logout": "POST only",
    "login-otp": "needs a confirmed authenticator; the enrolment step is crawled",
    "set_language": "POST only",
    "javascript-catalog": "JavaScript (djangojs.po)",
    "error-messages": "read below as the error catalogue",
    "metrics": "Prometheus text for machines",
    "healthz": "JSON for load balancers",
    "readyz": "JSON for load balancers",
    "banking-transaction": "JSON",
    "banking-document-upload": "POST, JSON",
    "banking-receipt": "PDF download",
    "recording-video": "media stream",
    "recording-download-create": "POST, JSON",
    "recording-legal-hold": "POST, JSON",
    "recording-download": "JSON",
    "recording-download-decide": "POST, JSON",
    "recording-download-file": "file download",
    "qc-review": "POST, redirects to the report (crawled with ?error=)",
    "qc-supplement": "POST, JSON",
    "qc-supplement-form": "POST, redirects to the report (crawled with ?supplement_error=)",
    "api-docs": "the integrators' reference (Redoc of the OpenAPI schema), English by design",
}


def url_names(patterns: list[Any] | None = None, namespace: str = "") -> Iterator[str]:
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from url_names(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name}" if entry.name else f"{namespace}{entry.pattern}"


def unclassified(name: str) -> bool:
    if name in PAGES or name in SKIPPED:
        return False
    if name.startswith("admin:"):
        return False  # admin internals: the index and a few changelists stand for them
    return not name.startswith("api-")  # the REST API answers JSON


# --- the world the pages show ----------------------------------------------------------------


@pytest.fixture
def world(demo, api_client_obj, monkeypatch, settings) -> World:
    import apps.calls.media

    monkeypatch.setattr(apps.calls.media, "heartbeat", lambda call_id: None)
    settings.RECORDINGS_DOWNLOAD_APPROVAL = True
    settings.STAFF_TOTP_REQUIRED = True
    users = {u.username: u for u in get_user_model().objects.all()}
    agent = users["agent01"]
    call = connect_call(api_client_obj, agent, business="debit_pin_reset")
    tx = add_transaction(call, agent)
    # Steps as the banking actions write them (a bare transaction has none).
    add_event(tx, "identity_frame", detail=identity._FRAME_DETAILS["id_card", True])
    add_event(tx, "pin_verified", detail="原密码核验通过")
    add_event(tx, "receipt_failed", detail="回单生成失败，系统将自动重试", severity="error")
    # What a call's timeline holds besides: a hold, a shared screen, a supervisor, a guest,
    # a live vision alert, recording trouble.
    seat = Participant.objects.get(call=call, role="agent")
    set_hold(participant=seat, on=True)
    set_hold(participant=seat, on=False)
    start_share(participant=seat)
    stop_share(participant=seat)
    monitor = start_monitor(user=users["supervisor01"], call_id=call.pk)
    set_monitor_mode(participant=monitor, mode="whisper")
    _, guest_token = invite_guest(inviter=seat, name=GUEST)
    customer = Participant.objects.get(call=call, role="customer")
    for kind in ("alert", "clear"):
        vision_event(
            call_id=call.pk,
            participant_id=customer.pk,
            kind=kind,
            problem="no_face",
            at=time.time(),
        )
    recording_degraded(call_id=call.pk, epoch=1, error="[Errno 28] No space left on device")
    recording_resumed(call_id=call.pk, epoch=1, lost_seconds=3.0)
    mark_key_point(call=call, code="risk_disclosed", actor=Actor.staff(agent))
    mark_key_point(call=call, code="free", text="客户要求放慢语速", actor=Actor.staff(agent))
    recording = ready_recording(call)
    gap = {"category": "complete", "code": "gap", "severity": "error", "start": 1.0, "end": 4.0}
    dark = {**gap, "category": "media", "code": "black", "severity": "warning", "role": "customer"}
    report = finished_report(recording, [gap, dark])
    failed = runs.request_qc(recording_id=recording.pk)
    runs.begin_run(report_id=failed.pk)
    runs.fail_run(report_id=failed.pk, error="recording has no timeline", final=True)
    set_legal_hold(
        recording=recording,
        on=True,
        reason="涉诉保全",
        user=users["supervisor01"],
        actor=Actor.staff(users["supervisor01"]),
    )
    # A second call whose recording could not be composed.
    other = connect_call(
        api_client_obj, users["agent02"], customer="DEMO0002", business="debit_pin_reset"
    )
    failed_recording = Recording.objects.create(
        call=other, state=RecordingState.FAILED, error="ffmpeg: exit status 1"
    )
    request_download(
        recording=recording,
        user=users["auditor01"],
        reason="监管检查调阅",
        actor=Actor.staff(users["auditor01"]),
    )
    from apps.accounts.models import Customer

    data = {u.get_full_name() for u in users.values()} | {
        f"{u.last_name}{u.first_name}" for u in users.values()
    }
    data |= {u.first_name for u in users.values()} | {u.last_name for u in users.values()}
    data |= {c.display_name for c in Customer.objects.all()}
    data |= {"客户要求放慢语速", "监管检查调阅", "涉诉保全", GUEST}  # typed by people
    data.discard("")
    _, used_token = issue_entry_ticket(
        client=api_client_obj,
        customer_reference="DEMO0003",
        customer_name="",
        business_code="debit_pin_reset",
        location=None,
    )
    redeem_entry_ticket(token=used_token)
    staff = users["agent02"]
    staff.set_password(ENROLLING_PASSWORD)
    staff.save(update_fields=["password"])
    call.refresh_from_db()
    assert timezone.is_aware(call.connected_at)
    return World(
        users,
        call,
        tx,
        recording,
        failed_recording,
        report,
        runs_report(failed),
        used_token,
        guest_token,
        data,
    )


def runs_report(report: Any) -> Any:
    report.refresh_from_db()
    return report


def client_for(role: str, world: World, language: str) -> Client:
    # LocaleMiddleware reads the language cookie (what the language menu sets) first, then
    # the browser's Accept-Language: both say the same here.
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    if role == "customer":
        # The demo mobile bank issues the ticket; its link opens the customer's session.
        page = client.post(
            reverse("demo-mobile-bank"), {"customer": "DEMO0002", "business": "debit_pin_reset"}
        )
        assert page.status_code == 200 and page.context["link_path"], page.content[:500]
        assert client.get(page.context["link_path"]).status_code == 302
    elif role == "guest":
        _, token = invite_guest(
            inviter=Participant.objects.get(call=world.call, role="agent"), name=GUEST
        )
        assert client.get(reverse("guest-enter", args=[token])).status_code == 302
    elif role == "enrolling":
        # Signed in with a password where an authenticator is required: step two, enrolment.
        page = client.post(
            reverse("login"), {"username": "agent02", "password": ENROLLING_PASSWORD}
        )
        assert page.status_code == 302 and page["Location"] == reverse("login-otp-enrol")
    elif role:
        client.force_login(world.users[role])
    return client


def crawl(world: World, language: str) -> tuple[int, dict[str, list[str]]]:
    # Each request activates its language in this thread: leave the default one behind.
    with translation.override(settings.LANGUAGE_CODE):
        return _crawl(world, language)


def _crawl(world: World, language: str) -> tuple[int, dict[str, list[str]]]:
    check = english_words if language == "zh-hans" else chinese_leftovers
    problems: dict[str, list[str]] = {}
    count = 0
    for visits in PAGES.values():
        for visit in visits:
            client = client_for(visit.role, world, language)
            url = visit.path(world) + (f"?{visit.query}" if visit.query else "")
            if visit.form is None:
                response = client.get(url)
            else:
                response = client.post(url, visit.form)
            where = f"{'POST ' if visit.form else ''}{url} as {visit.role or 'nobody'}"
            if response.status_code != visit.status:
                problems[where] = [f"status {response.status_code}, expected {visit.status}"]
                continue
            count += 1
            text = " | ".join(visible_text(response.content.decode(), language))
            words = check(text, world.data)
            if words:
                problems[where] = [in_context(word, text) for word in sorted(set(words))]
    errors = Client(HTTP_ACCEPT_LANGUAGE=language).get(reverse("error-messages"))
    body = errors.content.decode().removeprefix("window.RB_ERROR_MESSAGES = ").rstrip(";\n")
    for code, sentence in json.loads(body).items():
        words = check(sentence, set())
        if words:
            problems[f"errors.js {code}"] = sorted(set(words))
    return count, problems


def in_context(word: str, text: str) -> str:
    """The word with a little of the text around its first occurrence."""
    at = text.find(word)
    return f"{word} («{text[max(0, at - 25) : at + len(word) + 25]}»)"


def report(language: str, problems: dict[str, list[str]]) -> str:
    lines = [f"{language}: {len(problems)} pages show text in the wrong language:"]
    lines += [f"  {where}: {', '.join(words)}" for where, words in sorted(problems.items())]
    return "\n".join(lines)


def test_every_page_is_crawled_or_skipped_with_a_reason():
    missing = sorted({name for name in url_names() if unclassified(name)})
    assert not missing, f"pages the crawl does not know: {missing}"
    known = set(url_names())
    assert set(PAGES) <= known and set(SKIPPED) <= known, set(PAGES) - known


def test_chinese_pages_show_no_english_beyond_names_and_units(world):
    count, problems = crawl(world, "zh-hans")
    assert count == sum(len(visits) for visits in PAGES.values()), problems
    assert not problems, report("zh-hans", problems)


def test_every_action_in_the_audit_log_has_a_name(world):
    from apps.audit.hooks import action_name
    from apps.audit.models import AuditEvent

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert len(actions) > 20  # the world is busy enough to mean something
    assert not sorted(a for a in actions if not action_name(a)), "audit actions without a name"


def test_every_action_the_code_records_has_a_name(db):
    """Beyond the crawl's world: every action written as a literal in the code base."""
    from apps.audit.hooks import action_name

    root = ROOT
    found = {
        match
        for path in [*root.glob("apps/**/*.py"), *root.glob("media_worker/*.py")]
        if "tests" not in path.parts
        for match in re.findall(r'action="([a-z_]+\.[a-z_.]+)"', path.read_text("utf-8"))
    }
    assert len(found) > 60
    assert not sorted(a for a in found if not action_name(a)), "audit actions without a name"


def test_english_pages_show_no_chinese_left(world):
    count, problems = crawl(world, "en")
    assert count == sum(len(visits) for visits in PAGES.values()), problems
    assert not problems, report("en", problems)


def js_catalogue() -> set[str]:
    """The msgids of locale/en/LC_MESSAGES/djangojs.po that have an English msgstr."""
    po = (ROOT / "locale" / "en" / "LC_MESSAGES" / "djangojs.po").read_text("utf-8")
    strings = r'((?:"(?:\\.|[^"\\])*"\s*)+)'
    entry = re.compile(
        rf"^msgid {strings}(?:msgid_plural {strings})?msgstr(?:\[0\])? {strings}", re.M
    )

    def text(quoted: str) -> str:
        return "".join(re.findall(r'"((?:\\.|[^"\\])*)"', quoted)).replace('\\"', '"')

    return {text(m.group(1)) for m in entry.finditer(po) if text(m.group(3))}


def test_the_scripts_show_only_translated_sentences():
    """What the page scripts put on the page: every Chinese string is a gettext/ngettext
    msgid (or plural) with an English translation in djangojs.po; none is shown as it is."""
    translated = js_catalogue()
    literal = re.compile(r"""(['"`])((?:\\.|(?!\1).)*)\1""")
    # Before the literal: "gettext(" or "ngettext(", or "ngettext(<singular>, " for a plural.
    call = re.compile(r"""\bn?gettext\(\s*(?:(['"`])(?:\\.|(?!\1).)*\1\s*,\s*)?$""")
    problems = []
    for path in sorted((ROOT / "static" / "js").glob("*.js")):
        text = path.read_text("utf-8")
        text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        for number, line in enumerate(text.splitlines(), 1):
            code = re.sub(r"(^|[^:\\])//.*$", r"\1", line)
            for match in literal.finditer(code):
                sentence = match.group(2)
                if not CJK.search(sentence):
                    continue
                where = f"{path.name}:{number}: {sentence}"
                marked = call.search(code[: match.start()])
                if marked is None:
                    problems.append(f"{where} (not translated at all)")
                elif marked.group(1) is None and sentence not in translated:
                    problems.append(f"{where} (no English in djangojs.po)")
    assert not problems, "\n".join(problems)


def test_templates_have_no_chinese_outside_translation_tags():
    """Branches the crawl's world does not reach: no Chinese in a template outside
    {% translate %} / {% blocktranslate %}, comments and scripts."""
    outside = [
        (r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", re.S),
        (r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.S),
        (r"{#.*?#}", re.S),
        (r"""{%\s*translate\s+("[^"]*"|'[^']*')[^%]*%}""", 0),
        (r"<script\b.*?</script>", re.S),
    ]
    problems = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text("utf-8")
        for pattern, flags in outside:
            text = re.sub(pattern, lambda m: "\n" * m.group(0).count("\n"), text, flags=flags)
        for number, line in enumerate(text.splitlines(), 1):
            if CJK.search(line):
                problems.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not problems, "\n".join(problems)


def test_the_text_reader_finds_what_a_person_sees():
    html = (
        '<p title="Hint">你好 <b>Save</b></p><script>var x = "Hidden";</script>'
        '<style>.a{color:red}</style><input type="submit" value="Send" data-x="no">'
        '<img alt="Logo" src="a.png"><span data-label-ok="确定">SM4 debit_pin_reset</span>'
        '<option lang="en">English</option><code translate="no"><b>call.queued</b></code>'
    )
    text = " ".join(visible_text(html))
    assert english_words(text, set()) == ["Hint", "Save", "Send", "Logo", "debit_pin_reset"]
    assert chinese_leftovers(text, set()) == ["你好", "确定"]
    assert english_words("C20261207 3c9a0e1f-0000-4000-8000-00000000abcd 12 fps", set()) == []
    assert english_words("再试 %(tries_left)s 次", set()) == []
    english = " ".join(visible_text('<option lang="zh-hans">简体中文</option><p>Hello</p>', "en"))
    assert chinese_leftovers(english, set()) == []
