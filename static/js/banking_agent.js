/* The workstation's transaction panel (apps/banking): pick a scenario, fill its form, then drive
 * the steps (identity verified → customer confirms and signs → PIN on the customer's page or
 * submit here). Everything goes over the signaling socket (banking.*); the call hears
 * `banking.transaction` on every change.
 */
(function () {
  "use strict";

  const RB = window.RB;
  const panel = document.querySelector("[data-banking-panel]");
  if (!panel || !RB || !RB.agent) return;
  const client = RB.agent.client;
  const q = (sel) => panel.querySelector(sel);
  const state = { callId: null, scenarios: [], products: [], tx: null, pending: false };

  function showError(err) {
    if (RB.agent.errors) RB.agent.errors.add(err);
  }

  const PRODUCT_KINDS = { card_no: ["debit_card"], account_no: ["passbook", "certificate"] };

  function renderFields() {
    const box = q("[data-bk-fields]");
    box.textContent = "";
    const scenario = state.scenarios.find((s) => s.code === q("[data-bk-scenario]").value);
    if (!scenario) return;
    for (const field of scenario.fields) {
      const label = RB.el("label", "", field.label + (field.required ? " *" : "") + " ");
      let input;
      if (field.kind === "choice" || PRODUCT_KINDS[field.name]) {
        input = document.createElement("select");
        if (!field.required) input.appendChild(new Option("—", ""));
        const options = PRODUCT_KINDS[field.name]
          ? state.products
              .filter((p) => PRODUCT_KINDS[field.name].includes(p.kind))
              .map((p) => ({ value: p.number, label: p.number + (p.locked ? " 🔒" : "") }))
          : field.choices;
        options.forEach((c) => input.appendChild(new Option(c.label, c.value)));
      } else {
        input = document.createElement("input");
        input.type = field.kind === "date" ? "date" : field.kind === "int" ? "number" : "text";
        input.maxLength = field.max_length;
      }
      input.name = field.name;
      input.dataset.bkField = field.kind;
      label.appendChild(input);
      box.appendChild(label);
    }
  }

  function renderTx(tx) {
    state.tx = tx;
    const current = q("[data-bk-current]");
    current.hidden = !tx;
    const open = tx && ["draft", "identity_verified", "customer_confirmed"].includes(tx.state);
    q("[data-bk-start]").hidden = !!open;
    if (!tx) return;
    panel.dataset.txState = tx.state;
    q("[data-bk-name]").textContent = tx.name;
    q("[data-bk-state]").textContent = tx.state_label;
    const steps = q("[data-bk-steps]");
    steps.textContent = "";
    tx.steps.forEach((s) => steps.appendChild(RB.el("li", "", s.label)));
    const summary = q("[data-bk-summary]");
    summary.textContent = "";
    tx.summary.forEach((item) => {
      summary.appendChild(RB.el("dt", "", item.label));
      summary.appendChild(RB.el("dd", "", item.value));
    });
    // What the scenario adds to the common steps comes with the transaction (never its code).
    const entrusted = !!tx.has_principal;
    panel.querySelectorAll("[data-bk-principal-row]").forEach((el) => (el.hidden = !entrusted));
    const pin = tx.customer_action === "enter_pin";
    const can = {
      disclose: tx.has_disclosure && tx.state === "identity_verified" && !tx.confirmation_requested,
      principal: entrusted && tx.state === "draft",
      verify: tx.state === "draft",
      request_confirm: tx.state === "identity_verified" && !tx.confirmation_requested,
      submit: tx.state === "customer_confirmed" && !pin && !state.pending,
      request_pin: pin,
      cancel: !!open && !state.pending,
    };
    panel.querySelectorAll("[data-bk-do]").forEach((b) => {
      b.disabled = !can[b.dataset.bkDo];
      if (b.dataset.bkDo === "principal") b.hidden = !entrusted;
      if (b.dataset.bkDo === "disclose") b.hidden = !tx.has_disclosure;
      if (b.dataset.bkDo === "request_pin") b.hidden = !pin;
    });
    panel.querySelectorAll("[data-bk-capture]").forEach((b) => (b.disabled = tx.state !== "draft"));
    const names = { id_card: gettext("身份证 OCR"), face: gettext("人脸") };
    q("[data-bk-frames]").textContent = Object.entries(tx.frames || {})
      .map(([k, ok]) => names[k] + (ok ? " ✓" : " ✗"))
      .concat(typeof tx.face_match === "boolean" ? [gettext("人证比对") + (tx.face_match ? " ✓" : " ✗")] : [])
      .join("  ");
    // Why a capture did not pass, in words (not only ✗).
    const reasons = q("[data-bk-frame-reasons]");
    reasons.replaceChildren();
    const labels = { ...names, face_match: gettext("人证比对") };
    for (const [kind, code] of Object.entries(tx.frame_reasons || {})) {
      const text = { label: labels[kind] || "", value: RB.errorText(code) };
      const li = RB.el("li", "", interpolate(gettext("%(label)s：%(value)s"), text, true));
      li.dataset.code = code;
      reasons.appendChild(li);
    }
    reasons.hidden = !reasons.children.length;
    q("[data-bk-checks]").disabled = tx.state !== "draft";
    renderDocs(tx);
    const status = statusOf(tx);
    const out = q("[data-bk-result]");
    out.textContent = status.text;
    out.dataset.tone = status.tone;
    out.dataset.code = tx.result_code || "";
    // The core locked the card: what the agent can do next, one click away.
    q("[data-bk-next]").hidden = !(tx.state === "failed" && tx.result_code === "locked" && tx.scenario.startsWith("debit_"));
  }

  const RECEIPT_TEXT = {
    pending: gettext("回单生成中…"),
    issued: gettext("回单已生成"),
    failed: gettext("回单生成失败，系统正在自动重试"),
  };

  /** What the workstation says about the transaction now: where the customer is, what the bank
   * answered, and what to do next. */
  function statusOf(tx) {
    if (state.pending || tx.state === "submitted") return { text: gettext("正在提交核心系统，请稍候…"), tone: "pending" };
    if (tx.state === "completed") {
      const receipt = RECEIPT_TEXT[tx.receipt_state] ? gettext("；") + RECEIPT_TEXT[tx.receipt_state] : "";
      return { text: interpolate(gettext("办理成功，流水号 %s"), [tx.core_reference]) + receipt, tone: "ok" };
    }
    if (tx.state === "cancelled") return { text: gettext("本笔业务已取消。"), tone: "" };
    if (tx.state === "failed") {
      if (tx.result_code === "locked") return { text: RB.errorText("locked.agent"), tone: "error" };
      return { text: interpolate(gettext("未能办理：%s"), [RB.errorText(tx.result_code || "failed")]), tone: "error" };
    }
    if (tx.customer_action === "enter_pin") return pinStatus(tx);
    if (tx.customer_action === "read_confirm") return { text: gettext("等待客户阅读确认并签名…"), tone: "pending" };
    return { text: "", tone: "" };
  }

  function pinStatus(tx) {
    if (tx.result_code === "wrong_pin") {
      const left = typeof tx.tries_left === "number" ? tx.tries_left : null;
      const text = left === null
        ? gettext("客户输入的原密码不正确，客户手机已重新弹出密码键盘。")
        : interpolate(gettext("客户输入的原密码不正确，还可尝试 %(left)s 次（再错 %(left)s 次卡片将被锁定）。客户手机已重新弹出密码键盘，可提醒客户重新输入。"), { left: left }, true);
      return { text: text, tone: "warning" };
    }
    if (tx.result_code) {
      return { text: RB.errorText(tx.result_code) + " " + gettext("客户手机已重新弹出密码键盘。"), tone: "warning" };
    }
    if (tx.pin_verified) return { text: gettext("原密码已核验通过，等待客户设置新密码…"), tone: "pending" };
    return { text: gettext("等待客户在手机上输入密码…"), tone: "pending" };
  }

  // -- corporate renewal: new document images over HTTP (POST .../documents, with CSRF) ------

  const DOC_KINDS = { business_licence: gettext("营业执照"), legal_rep_id: gettext("法定代表人身份证件") };
  // What these codes mean here, more precisely than the catalogue's general sentence.
  const DOC_ERRORS = {
    wrong_state: gettext("客户确认后不能再上传证件。"),
    wrong_scenario: gettext("只有对公证件过期更新业务可以上传证件。"),
  };
  const docs = { txId: null, list: [] };

  function renderDocs(tx) {
    const form = q("[data-bk-docs]");
    const kinds = tx.document_kinds || [];
    const open = kinds.length > 0 && ["draft", "identity_verified"].includes(tx.state);
    form.hidden = kinds.length === 0;
    form.querySelectorAll("button, input, select").forEach((el) => (el.disabled = !open));
    form.querySelectorAll("select[name=kind] option").forEach((o) => (o.hidden = !kinds.includes(o.value)));
    if (docs.txId !== tx.id) {
      docs.txId = tx.id;
      docs.list = [];
      q("[data-bk-doc-list]").textContent = "";
      docResult("", null);
    }
  }

  function docResult(text, ok, code) {
    const out = q("[data-bk-doc-result]");
    out.textContent = text;
    out.dataset.code = code || ""; // for support and tests; people read the sentence
    if (ok === null) delete out.dataset.ok;
    else out.dataset.ok = ok ? "1" : "0";
  }

  async function uploadDocument(form) {
    const tx = state.tx;
    if (!tx) return;
    const url = form.dataset.url.replace("00000000-0000-0000-0000-000000000000", tx.id);
    const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    docResult(gettext("正在上传并检查…"), null);
    try {
      const response = await fetch(url, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": csrf },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const err = body.error || { code: "http_" + response.status };
        docResult(DOC_ERRORS[err.code] || RB.errorText(err), false, err.code);
        return;
      }
      const doc = body.document;
      const line = interpolate(gettext("%s：检查通过，SM3 %s…"), [DOC_KINDS[doc.kind] || doc.kind, doc.sm3.slice(0, 16)]);
      docResult(line, true);
      q("[data-bk-doc-list]").appendChild(RB.el("li", "", line));
      form.querySelector("[data-bk-doc-file]").value = "";
    } catch (err) {
      docResult(RB.errorText(err), false);
    } finally {
      button.disabled = false;
    }
  }

  q("[data-bk-docs]").addEventListener("submit", (ev) => {
    ev.preventDefault();
    uploadDocument(ev.currentTarget);
  });

  function act(kind, extra) {
    const tx = state.tx;
    if (!tx) return;
    const body = { call_id: state.callId, transaction_id: tx.id, ...(extra || {}) };
    if (kind === "verify") {
      body.checks = {};
      panel.querySelectorAll("[data-bk-check]").forEach((c) => {
        if (!c.closest("[hidden]")) body.checks[c.dataset.bkCheck] = c.checked;
      });
    }
    if (kind === "principal") body.participant_id = parseInt(q("[data-bk-principal-id]").value, 10);
    // A submit waits for the bank's core: say so at once (the customer's page shows it too).
    state.pending = kind === "submit";
    if (state.pending) renderTx(tx);
    client
      .request("banking." + kind, body)
      .then((ack) => {
        state.pending = false;
        renderTx(ack.transaction);
      })
      .catch((err) => {
        state.pending = false;
        if (state.tx) renderTx(state.tx);
        showError(err);
      });
  }

  // Cancelling asks first: a slip must not throw away what the customer has confirmed.
  const cancelDialog = q("[data-bk-cancel-dialog]");
  function askCancel() {
    if (!state.tx) return;
    q("[data-bk-cancel-reason]").value = "";
    cancelDialog.showModal();
    q("[data-bk-cancel-keep]").focus();
  }
  cancelDialog.addEventListener("close", () => {
    if (cancelDialog.returnValue === "cancel") {
      act("cancel", { reason: q("[data-bk-cancel-reason]").value.trim() || gettext("座席取消") });
    }
    cancelDialog.returnValue = "";
  });

  panel.querySelectorAll("[data-bk-do]").forEach((b) =>
    b.addEventListener("click", () => (b.dataset.bkDo === "cancel" ? askCancel() : act(b.dataset.bkDo))),
  );

  // After the core locked a card: start the unlock on this call, the card already chosen.
  q("[data-bk-next-unlock]").addEventListener("click", () => {
    const failed = state.tx;
    client
      .request("banking.scenarios", { call_id: state.callId })
      .then((ack) => {
        state.products = ack.products;
        const select = q("[data-bk-scenario]");
        select.value = "debit_pin_unlock";
        renderFields();
        const masked = failed && failed.summary.find((s) => s.name === "card_no");
        const card = q("[data-bk-fields] [name=card_no]");
        const locked = state.products.find(
          (p) => p.locked && masked && p.number.slice(0, 4) === masked.value.slice(0, 4) && p.number.slice(-4) === masked.value.slice(-4),
        );
        if (card && locked) card.value = locked.number;
        q("[data-bk-start] button[type=submit]").focus();
      })
      .catch(showError);
  });
  panel.querySelectorAll("[data-bk-capture]").forEach((b) =>
    b.addEventListener("click", () => {
      if (!state.tx) return;
      client
        .request("banking.capture", {
          call_id: state.callId,
          transaction_id: state.tx.id,
          frame: b.dataset.bkCapture,
        })
        .catch(showError);
    }),
  );
  // A capture that failed says why (the catalogue's sentence for its code).
  client.on("banking.capture_failed", (evt) => showError({ code: evt.code || "capture_failed" }));
  q("[data-bk-scenario]").addEventListener("change", renderFields);
  q("[data-bk-start]").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = {};
    q("[data-bk-fields]").querySelectorAll("[name]").forEach((input) => {
      if (input.value === "") return;
      form[input.name] = input.dataset.bkField === "int" ? Number(input.value) : input.value;
    });
    client
      .request("banking.start", {
        call_id: state.callId,
        scenario: q("[data-bk-scenario]").value,
        form: form,
      })
      .then((ack) => renderTx(ack.transaction))
      .catch(showError);
  });

  function enter(callId) {
    state.callId = callId;
    panel.hidden = false;
    // end() disabled every button; renderTx() then sets the steps' own state.
    panel.querySelectorAll("button").forEach((b) => (b.disabled = false));
    client
      .request("banking.scenarios", { call_id: callId })
      .then((ack) => {
        state.scenarios = ack.scenarios;
        state.products = ack.products;
        const select = q("[data-bk-scenario]");
        select.textContent = "";
        ack.scenarios.forEach((s) => select.appendChild(new Option(s.name, s.code)));
        select.value = ack.business;
        renderFields();
        return client.request("banking.get", { call_id: callId });
      })
      .then((ack) => renderTx(ack.transaction))
      .catch(showError);
  }

  function end(callId) {
    if (callId && callId !== state.callId) return;
    state.callId = null;
    panel.querySelectorAll("button").forEach((b) => (b.disabled = true));
  }

  client.on("hello", (hello) => (hello.call ? enter(hello.call.call_id) : end(null)));
  client.on("call.connected", (evt) => evt.call && enter(evt.call.call_id));
  client.on("call.ended", (evt) => end(evt.call_id));
  client.on("banking.transaction", (evt) => {
    if (evt.transaction && evt.transaction.call_id === state.callId) renderTx(evt.transaction);
  });

  RB.bankingPanel = { state: state, act: act }; // for the console and the browser tests
})();
