/* The customer's side of a business transaction (apps/banking): what the agent asks for now
 * (show the ID card, read and confirm with a signature, enter the PIN) and the result.
 * Events: `banking.transaction` pushed to the call; `banking.get` on (re)connect.
 */
(function () {
  "use strict";

  const RB = window.RB;
  const root = document.querySelector("[data-banking-customer]");
  if (!root || !RB || !RB.customer) return;
  const client = RB.customer.client;
  const q = (sel) => root.querySelector(sel);
  const pad = new RB.PinPad(q("[data-pinpad]"));
  const signature = new RB.SignaturePad(q("[data-signature-canvas]"));
  // The principal of an entrusted agency joins as a guest on this same page.
  const state = { tx: null, pinFor: null, role: "customer", me: null };

  function message(text) {
    q("[data-bk-message]").textContent = text || "";
  }

  function fail(err) {
    message(RB.errorText(err));
  }

  const PROMPTS = {
    old_pin: gettext("请输入原交易密码"),
    new_pin: gettext("请输入新密码（6位数字）"),
    repeat: gettext("请再次输入新密码"),
  };

  function askPins(tx) {
    if (state.pinFor === tx.id + tx.updated_at) return;
    state.pinFor = tx.id + tx.updated_at;
    const fields = tx.pin_fields.slice();
    const got = {};
    const steps = [];
    fields.forEach((f) => {
      steps.push(f);
      if (f === "new_pin") steps.push("repeat");
    });
    let i = 0;
    const next = () => {
      if (i >= steps.length) return send();
      const step = steps[i];
      pad.start(PROMPTS[step], (pin) => {
        if (step === "repeat") {
          if (pin !== got.new_pin) {
            got.new_pin = null;
            message(gettext("两次输入的新密码不一致，请重新输入。"));
            i = steps.indexOf("new_pin");
            return next();
          }
        } else {
          got[step] = pin;
        }
        message("");
        i += 1;
        next();
      });
    };
    const send = async () => {
      pad.stop();
      message(gettext("正在加密提交…"));
      try {
        const pins = {};
        for (const f of fields) pins[f] = await RB.sealPin(got[f], f, tx.id, tx.pin_key);
        fields.forEach((f) => (got[f] = null));
        const ack = await client.request("banking.pin", { transaction_id: tx.id, pins: pins });
        message("");
        render(ack.transaction);
      } catch (err) {
        state.pinFor = null;
        fail(err);
      }
    };
    next();
  }

  function render(tx) {
    state.tx = tx;
    if (!tx) {
      root.hidden = true;
      pad.stop();
      return;
    }
    root.hidden = false;
    root.dataset.action = tx.customer_action;
    root.dataset.state = tx.state;
    q("[data-bk-title]").textContent = tx.name;
    q("[data-bk-state]").textContent = tx.state_label;
    const summary = q("[data-bk-summary]");
    summary.textContent = "";
    for (const item of tx.summary) {
      summary.appendChild(RB.el("dt", "", item.label));
      summary.appendChild(RB.el("dd", "", item.value));
    }
    const guest = state.role === "guest";
    const principal = guest && tx.principal_id !== null && tx.principal_id === state.me;
    q("[data-bk-authorize]").hidden = !(
      principal && tx.state === "identity_verified" && !tx.authorized
    );
    q("[data-bk-show-id]").hidden = tx.customer_action !== "show_id" && !(principal && tx.state === "draft");
    const confirming = !guest && tx.customer_action === "read_confirm";
    q("[data-bk-confirm]").hidden = !confirming;
    if (confirming) q("[data-bk-confirmation]").textContent = tx.confirmation || "";
    if (!guest && tx.customer_action === "enter_pin") {
      if (tx.result_code) message(tx.result_message || tx.result_code);
      askPins(tx);
    } else {
      pad.stop();
    }
    const result = q("[data-bk-result]");
    result.hidden = tx.customer_action !== "done";
    if (!result.hidden) {
      result.dataset.ok = tx.state === "completed" ? "1" : "0";
      result.textContent =
        tx.state === "completed"
          ? interpolate(gettext("办理成功，业务流水号 %s"), [tx.core_reference])
          : interpolate(gettext("未能办理：%s"), [tx.result_message || tx.state_label]);
    }
  }

  q("[data-bk-authorize-button]").addEventListener("click", () => {
    client
      .request("banking.authorize", { transaction_id: state.tx.id })
      .then((ack) => render(ack.transaction))
      .catch(fail);
  });
  q("[data-signature-clear]").addEventListener("click", () => signature.clear());
  q("[data-bk-accept]").addEventListener("click", () => {
    const png = signature.toPng();
    if (!png) return message(gettext("请先在签名区签名。"));
    client
      .request("banking.confirm", { transaction_id: state.tx.id, accept: true, signature: png })
      .then((ack) => {
        signature.clear();
        render(ack.transaction);
      })
      .catch(fail);
  });
  q("[data-bk-decline]").addEventListener("click", () => {
    client
      .request("banking.confirm", { transaction_id: state.tx.id, accept: false })
      .then((ack) => render(ack.transaction))
      .catch(fail);
  });

  function refresh() {
    client.request("banking.get", {}).then((ack) => render(ack.transaction), () => {});
  }

  client.on("banking.transaction", (evt) => render(evt.transaction));
  // Captions of a disclosure the server speaks into the call (one sentence at a time).
  client.on("banking.caption", (evt) => {
    const caption = q("[data-bk-caption]");
    caption.textContent = evt.text || "";
    caption.hidden = !evt.text;
    if (evt.text) root.hidden = false;
  });
  client.on("call.connected", refresh);
  client.on("hello", (hello) => {
    state.role = hello.role;
    state.me = hello.participant_id || null;
    if (hello.call_state === "connected" || (hello.call && hello.call.state === "connected")) refresh();
  });
  client.on("call.ended", () => pad.stop());

  RB.banking = { render: render, pad: pad, signature: signature }; // for the browser tests
})();
