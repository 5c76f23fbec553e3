import assert from "node:assert/strict";
import { test } from "node:test";

import { ticketCode, ticketUrl } from "../src/ticket.js";

test("a ticket may be an entry link, a path or a bare token", () => {
  assert.equal(ticketUrl("https://bank.test", "https://bank.test/h5/enter/abc"), "https://bank.test/h5/enter/abc");
  assert.equal(ticketUrl("https://bank.test", "/h5/enter/abc"), "https://bank.test/h5/enter/abc");
  assert.equal(ticketUrl("https://bank.test", "abc_DEF-1"), "https://bank.test/h5/enter/abc_DEF-1");
  assert.equal(ticketUrl("https://bank.test", "abc", "invite"), "https://bank.test/h5/invite/abc");
  assert.throws(() => ticketUrl("https://bank.test", "a b"), { code: "ticket_invalid" });
});

test("a refused ticket's code comes from its page, else from the status", () => {
  assert.equal(ticketCode(410, '<div id="ticket-error" data-code="ticket_expired">'), "ticket_expired");
  assert.equal(ticketCode(410, "gone"), "ticket_used");
  assert.equal(ticketCode(404, "nope"), "ticket_invalid");
  assert.equal(ticketCode(404, 'data-code="<script>"'), "ticket_invalid");
});
