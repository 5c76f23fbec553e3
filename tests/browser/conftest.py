"""One Chromium per browser test, launched from Debian's package (see support.launch); the
network namespaces of the weak-network tests (tests/netlab.py)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.support import launch
from tests.live import daphne, rq_worker
from tests.netcall import CHROMIUM, RemoteBankCall, entry_path
from tests.netcall import launch as launch_for
from tests.netlab import NetLab, unavailable_reason


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def lab() -> Iterator[NetLab]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"network namespaces cannot be made here: {reason}")
    # A subnet and names of this process's own: another run of these tests may be up meanwhile.
    tag = os.getpid() % 200
    net = NetLab(prefix=f"rbt{tag}", subnet=f"10.78.{tag + 20}")
    net.up()
    try:
        yield net
    finally:
        net.down()


@pytest.fixture
def lab_call(demo, lab: NetLab, tmp_path: Path) -> Iterator[RemoteBankCall]:
    """A call to be connected: the customer's Chromium behind the lab's link, the agent's in the
    root namespace (never impaired), Daphne on the lab's server address, one media worker."""
    from apps.accounts.demo import DEMO_PASSWORD
    from tests.browser.support import orm

    with (
        daphne(host=lab.server_ip, ALLOWED_HOSTS=lab.server_ip) as base,
        rq_worker("media"),
        sync_playwright() as playwright,
    ):
        origins = [base]
        shaped = str(lab.wrapper(lab.customer, CHROMIUM, tmp_path))
        customer = launch_for(playwright, shaped, origins)
        agent = launch_for(playwright, CHROMIUM, origins)
        call = RemoteBankCall(customer, agent, base, orm(entry_path), "agent01", DEMO_PASSWORD)
        try:
            yield call
        finally:
            call.close()
            customer.close()
            agent.close()
