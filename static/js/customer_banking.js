/* The customer's side of a business transaction, rendered from the H5 SDK (RB.call): the card
 * with the transaction, and the task the agent asks for now (the SDK's `prompt`): show the ID
 * card, read and confirm with a signature, enter the PIN on a shuffled keypad, authorize (the
 * principal of an entrusted agency). The PIN digits go straight into the SDK's PIN entry, which
 * seals them to the bank's PIN system: this script never holds a PIN.
 */
(function () {
  "use strict";

  const RB = window.RB;
  const root = document.querySelector("[data-banking-customer]");
  if (!root || !RB || !RB.call) return;
  const call = RB.call;
  const q = (sel) => root.querySelector(sel);
  const signature = new RB.SignaturePad(q("[data-signature-canvas]"));
  const padRoot = q("[data-pinpad]");
  const keys = q("[data-pin-keys]");
  const dots = Array.from(root.querySelectorAll("[data-pin-dot]"));
  const SIGN_FIRST = gettext("请先在签名区签名。");
  const state = { prompt: null, entry: null, offEntry: null };

  const PIN_PROMPTS = {
    old_pin: gettext("请输入原交易密码"),
    new_pin: gettext("请输入新密码（6位数字）"),
    repeat: gettext("请再次输入新密码"),
  };

  /** Why a PIN entry starts over (the core's refusal, with the tries it still accepts): the
   * sentence of remotebank/errors.py, never the core's own (English) words. */
  function retryText(retry) {
    if (retry.code === "wrong_pin" && retry.triesLeft === 1) return RB.errorText("wrong_pin", { last_try: 1 });
    if (retry.code === "wrong_pin" && typeof retry.triesLeft === "number") {
      return RB.errorText("wrong_pin", { tries_left: retry.triesLeft });
    }
    return RB.errorText(retry.code);
  }

  /** What the customer reads about a finished transaction (and what to do next). */
  function resultText(tx) {
    if (tx.state === "completed") return interpolate(gettext("办理成功，业务流水号 %s"), [tx.core_reference]);
    if (tx.state === "cancelled") return gettext("工作人员已取消本笔业务，未提交银行系统。");
    if (tx.result_code === "locked") return RB.errorText("locked.customer");
    return interpolate(gettext("未能办理：%s"), [tx.result_code ? RB.errorText(tx.result_code) : tx.state_label]);
  }

  const RECEIPT_TEXT = {
    pending: gettext("电子回单正在生成…"),
    issued: gettext("电子回单已生成，已存入银行业务凭证。"),
    failed: gettext("电子回单生成遇到问题，系统正在自动重试，不影响办理结果。"),
  };

  function message(text) {
    q("[data-bk-message]").textContent = text || "";
  }

  function fail(err) {
    message(err && err.code === "signature_empty" ? SIGN_FIRST : RB.errorText(err));
  }

  // -- the card --------------------------------------------------------------------------------

  function renderTransaction(tx) {
    if (!tx) {
      root.hidden = true;
      return;
    }
    root.hidden = false;
    root.dataset.action = tx.customer_action;
    root.dataset.state = tx.state;
    q("[data-bk-title]").textContent = tx.name;
    q("[data-bk-state]").textContent = tx.state_label;
    const summary = q("[data-bk-summary]");
    summary.replaceChildren();
    for (const item of tx.summary) {
      summary.appendChild(RB.el("dt", "", item.label));
      summary.appendChild(RB.el("dd", "", item.value));
    }
    // Submitted to the bank's core: the answer is on its way (never a silent wait).
    q("[data-bk-pending]").hidden = tx.state !== "submitted";
    const result = q("[data-bk-result]");
    result.hidden = tx.customer_action !== "done";
    if (!result.hidden) {
      result.dataset.ok = tx.state === "completed" ? "1" : "0";
      result.dataset.code = tx.result_code || "";
      result.textContent = resultText(tx);
    }
    const receipt = q("[data-bk-receipt]");
    receipt.hidden = tx.state !== "completed" || !RECEIPT_TEXT[tx.receipt_state];
    receipt.textContent = RECEIPT_TEXT[tx.receipt_state] || "";
  }

  // -- the task asked for now ------------------------------------------------------------------

  function renderPrompt(prompt) {
    const changed = !state.prompt || !prompt || state.prompt.transaction.id !== prompt.transaction.id
      || state.prompt.kind !== prompt.kind;
    state.prompt = prompt;
    // A message belongs to the task it was about: never carried into the next one.
    if (changed) message("");
    const kind = prompt ? prompt.kind : "";
    root.dataset.task = kind;
    q("[data-bk-task-label]").hidden = !kind;
    q("[data-bk-show-id]").hidden = kind !== "show_id";
    q("[data-bk-confirm]").hidden = kind !== "consent";
    q("[data-bk-authorize]").hidden = kind !== "authorize";
    if (kind === "consent") {
      q("[data-bk-confirmation]").textContent = prompt.text;
      if (changed) signature.clear();
    }
    bindPin(kind === "pin" ? prompt : null);
    if (kind) root.hidden = false;
    if (changed && kind) root.scrollTop = 0; // the task starts at its top
    document.body.classList.toggle("has-task", kind === "consent" || kind === "pin" || kind === "authorize");
  }

  function bindPin(prompt) {
    const entry = prompt ? prompt.entry : null;
    if (entry === state.entry) return;
    if (state.offEntry) state.offEntry();
    state.entry = entry;
    state.offEntry = null;
    padRoot.hidden = !entry;
    keys.replaceChildren();
    if (!entry) return;
    if (prompt.retry) message(retryText(prompt.retry));
    let layout = null;
    state.offEntry = entry.on("change", (s) => {
      if (s.mismatch && s.filled === 0) message(gettext("两次输入的新密码不一致，请重新输入。"));
      else if (s.filled > 0 && !prompt.retry) message("");
      if (s.layout.join("") !== layout) layout = renderKeys(entry, s.layout);
      renderPin(s);
    });
    layout = renderKeys(entry, entry.state.layout);
    renderPin(entry.state);
  }

  function renderPin(s) {
    q("[data-pin-prompt]").textContent = s.submitting
      ? gettext("正在加密提交…")
      : s.checking
        ? gettext("正在核验原密码…")
        : PIN_PROMPTS[s.step] || PIN_PROMPTS.new_pin;
    padRoot.dataset.step = s.step;
    padRoot.dataset.busy = s.submitting || s.checking ? "1" : "0";
    dots.forEach((dot, i) => (dot.dataset.filled = i < s.filled ? "1" : "0"));
    keys.querySelectorAll("button").forEach((b) => (b.disabled = s.submitting || s.checking));
  }

  /** Nine digits, clear, the tenth digit, backspace: in the entry's random order. */
  function renderKeys(entry, layout) {
    keys.replaceChildren();
    const cells = layout.slice(0, 9).concat(["clear", layout[9], "back"]);
    for (const cell of cells) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "pin-key";
      if (cell === "clear") {
        button.textContent = gettext("清除");
        button.dataset.pinAction = "clear";
        button.addEventListener("click", () => entry.clear());
      } else if (cell === "back") {
        button.textContent = "⌫";
        button.setAttribute("aria-label", gettext("退格"));
        button.dataset.pinAction = "back";
        button.addEventListener("click", () => entry.back());
      } else {
        button.textContent = cell;
        button.dataset.pinDigit = cell;
        button.addEventListener("click", () => entry.press(cell));
      }
      keys.appendChild(button);
    }
    return layout.join("");
  }

  // -- answers ---------------------------------------------------------------------------------

  function answer(kind, act) {
    const prompt = state.prompt;
    if (!prompt || prompt.kind !== kind) return;
    act(prompt).catch(fail);
  }

  q("[data-signature-clear]").addEventListener("click", () => signature.clear());
  // Signing clears the "sign first" reminder at once.
  q("[data-signature-canvas]").addEventListener("pointerdown", () => {
    if (q("[data-bk-message]").textContent === SIGN_FIRST) message("");
  });
  q("[data-bk-accept]").addEventListener("click", () =>
    answer("consent", (p) =>
      p.accept(signature.toPng()).then(() => {
        signature.clear();
        message("");
      }),
    ),
  );
  q("[data-bk-decline]").addEventListener("click", () => answer("consent", (p) => p.decline()));
  q("[data-bk-authorize-button]").addEventListener("click", () => answer("authorize", (p) => p.authorize()));

  // -- the SDK's events ------------------------------------------------------------------------

  call.on("transaction", renderTransaction);
  call.on("prompt", renderPrompt);
  call.on("promptError", fail);
  // Captions of a disclosure the server speaks into the call (one sentence at a time).
  call.on("caption", (c) => {
    const caption = q("[data-bk-caption]");
    caption.textContent = c.text;
    caption.hidden = !c.text;
    if (c.text) root.hidden = false;
  });
  call.on("state", (e) => {
    if (e.state === "ended") {
      renderPrompt(null);
      root.hidden = true;
    }
  });
  renderTransaction(call.transaction);
  renderPrompt(call.prompt);

  RB.banking = { signature: signature }; // for the browser tests
})();
