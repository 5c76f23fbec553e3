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
  const state = { callId: null, scenarios: [], products: [], tx: null };

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
    const can = {
      disclose: tx.has_disclosure && tx.state === "identity_verified" && !tx.confirmation_requested,
      principal: entrusted && tx.state === "draft",
      verify: tx.state === "draft",
      request_confirm: tx.state === "identity_verified" && !tx.confirmation_requested,
      submit: tx.state === "customer_confirmed" && tx.customer_action !== "enter_pin",
      cancel: !!open,
    };
    panel.querySelectorAll("[data-bk-do]").forEach((b) => {
      b.disabled = !can[b.dataset.bkDo];
      if (b.dataset.bkDo === "principal") b.hidden = !entrusted;
      if (b.dataset.bkDo === "disclose") b.hidden = !tx.has_disclosure;
    });
    panel.querySelectorAll("[data-bk-capture]").forEach((b) => (b.disabled = tx.state !== "draft"));
    const names = { id_card: gettext("身份证 OCR"), face: gettext("人脸") };
    q("[data-bk-frames]").textContent = Object.entries(tx.frames || {})
      .map(([k, ok]) => names[k] + (ok ? " ✓" : " ✗"))
      .concat(typeof tx.face_match === "boolean" ? [gettext("人证比对") + (tx.face_match ? " ✓" : " ✗")] : [])
      .join("  ");
    q("[data-bk-checks]").disabled = tx.state !== "draft";
    renderDocs(tx);
    let result = "";
    if (tx.state === "completed") result = interpolate(gettext("办理成功，流水号 %s"), [tx.core_reference]);
    else if (tx.result_code) result = (tx.result_message || "") + " (" + tx.result_code + ")";
    else if (tx.customer_action === "enter_pin") result = gettext("等待客户在手机上输入密码…");
    else if (tx.customer_action === "read_confirm") result = gettext("等待客户阅读确认并签名…");
    q("[data-bk-result]").textContent = result;
  }

  // -- corporate renewal: new document images over HTTP (POST .../documents, with CSRF) ------

  const DOC_KINDS = { business_licence: gettext("营业执照"), legal_rep_id: gettext("法定代表人身份证件") };
  const DOC_ERRORS = {
    bad_document: gettext("不是有效的图片：请上传不超过 4 MB 的 JPEG 或 PNG 图片。"),
    document_too_small: gettext("图片太小，无法辨认（至少 600×400 像素）。"),
    duplicate_document: gettext("这张图片已经上传过。"),
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

  function docResult(text, ok) {
    const out = q("[data-bk-doc-result]");
    out.textContent = text;
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
        docResult((DOC_ERRORS[err.code] || err.message || RB.errorText(err)) + " (" + err.code + ")", false);
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

  function act(kind) {
    const tx = state.tx;
    if (!tx) return;
    const body = { call_id: state.callId, transaction_id: tx.id };
    if (kind === "verify") {
      body.checks = {};
      panel.querySelectorAll("[data-bk-check]").forEach((c) => {
        if (!c.closest("[hidden]")) body.checks[c.dataset.bkCheck] = c.checked;
      });
    }
    if (kind === "principal") body.participant_id = parseInt(q("[data-bk-principal-id]").value, 10);
    client
      .request("banking." + kind, body)
      .then((ack) => renderTx(ack.transaction))
      .catch(showError);
  }

  panel.querySelectorAll("[data-bk-do]").forEach((b) =>
    b.addEventListener("click", () => act(b.dataset.bkDo)),
  );
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
  client.on("banking.capture_failed", (evt) => showError({ code: evt.code, message: evt.code }));
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
    q("[data-bk-start] button[type=submit]").disabled = false; // end() disabled it
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
