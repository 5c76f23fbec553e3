/**
 * `<rb-seat>`: the seat widget (悬浮窗座席组件) a CRM or teller page embeds to give an agent the
 * call without leaving it: presence, ring (accept / reject), video, chat, the transaction panel
 * and hang-up. Everything is drawn in its own shadow root; the host page's styles do not leak
 * in and ours do not leak out.
 *
 *   <script src="https://rb.bank.example/static/sdk/remotebank-seat.js"></script>
 *   <rb-seat server="https://rb.bank.example" token="…from your server…"></rb-seat>
 *
 * Attributes: `server`, `token`, `lang` (`zh` default, `en`). Property `tokenProvider`: a
 * function returning a fresh token, for reconnecting after the first one expired. Events
 * (bubbling, composed): `rb-presence`, `rb-call`, `rb-ended`, `rb-transaction`, `rb-error`.
 */
import { asError } from "./errors.js";
import { SeatDesk, type Scenario, type SeatOffer, type SeatPresence, type SeatTransaction } from "./seat.js";

const TEXT = {
  zh: {
    title: "视频座席",
    connecting: "连接中",
    unauthorized: "登录已失效",
    offline: "离线",
    ready: "就绪",
    break: "小休",
    ringing: "来电",
    busy: "通话中",
    after_call_work: "话后处理",
    goReady: "就绪",
    goBreak: "小休",
    accept: "接听",
    reject: "拒绝",
    hangup: "挂断",
    send: "发送",
    chatPlaceholder: "输入消息",
    incoming: "来电",
    transfer: "转接来电",
    noCall: "暂无通话",
    transaction: "业务办理",
    start: "开始办理",
    verify: "核验身份",
    confirm: "请客户确认",
    submit: "提交办理",
    cancel: "取消办理",
    choose: "选择业务",
    ended: "通话已结束",
    failed: "操作未完成，请重试。",
  },
  en: {
    title: "Video seat",
    connecting: "Connecting",
    unauthorized: "Sign-in expired",
    offline: "Offline",
    ready: "Ready",
    break: "On break",
    ringing: "Ringing",
    busy: "In a call",
    after_call_work: "After-call work",
    goReady: "Ready",
    goBreak: "Break",
    accept: "Accept",
    reject: "Reject",
    hangup: "Hang up",
    send: "Send",
    chatPlaceholder: "Type a message",
    incoming: "Incoming call",
    transfer: "Transferred call",
    noCall: "No call",
    transaction: "Transaction",
    start: "Start",
    verify: "Verify identity",
    confirm: "Ask the customer to confirm",
    submit: "Submit",
    cancel: "Cancel",
    choose: "Choose a business",
    ended: "The call has ended",
    failed: "Not done; please try again.",
  },
} as const;

type Words = { [K in keyof (typeof TEXT)["zh"]]: string };

/** The protocol's codes an agent meets here, in words (docs/protocol.md); others: `failed`. */
const ERRORS: Record<string, { zh: string; en: string }> = {
  not_connected: { zh: "与服务器的连接已断开，正在重新连接。", en: "Disconnected; reconnecting." },
  disconnected: { zh: "连接中断，操作可能没有完成，请重试。", en: "The connection dropped; please try again." },
  timeout: { zh: "服务器没有及时响应，请重试。", en: "The server did not answer in time; please try again." },
  rate_limited: { zh: "操作过于频繁，请稍后再试。", en: "Too many actions; please wait a moment." },
  wrong_state: { zh: "当前状态下不能执行该操作。", en: "This cannot be done now." },
  bad_presence_transition: { zh: "当前状态下不能切换到该状态。", en: "You cannot switch to that state now." },
  offer_not_pending: { zh: "该来电已被撤回或已超时。", en: "The call was withdrawn or timed out." },
  offer_not_found: { zh: "该来电已不存在。", en: "The call is no longer there." },
  call_not_found: { zh: "通话不存在或已经结束。", en: "The call does not exist or has ended." },
  chat_empty: { zh: "消息不能为空。", en: "The message is empty." },
  chat_too_long: { zh: "消息太长，请分几条发送。", en: "The message is too long." },
  transaction_open: { zh: "请先完成或取消当前业务。", en: "Finish or cancel the open transaction first." },
  unknown_scenario: { zh: "该业务不存在。", en: "No such business." },
  missing_skill: { zh: "您没有办理该业务的技能。", en: "You lack the skill for this business." },
  bad_form: { zh: "业务表单不正确。", en: "The form is not valid." },
  field_required: { zh: "请填写必填项。", en: "Please fill in the required fields." },
  bad_field: { zh: "有字段填写不正确。", en: "A field is not valid." },
  not_account_holder: { zh: "该账户不属于本客户。", en: "The account is not the customer's." },
  no_core_customer: { zh: "核心系统中没有该客户。", en: "The core banking system does not know the customer." },
  identity_check_failed: { zh: "身份核验未通过。", en: "Identity verification failed." },
  id_card_not_read: { zh: "请先识别身份证件。", en: "Read the ID card first." },
  face_not_compared: { zh: "请先完成人证比对。", en: "Compare the face with the ID photo first." },
  key_point_missing: { zh: "请先完成必需的打点。", en: "Mark the required key points first." },
  documents_missing: { zh: "请先上传所需证件。", en: "Upload the required documents first." },
  pin_required: { zh: "该业务需客户在手机上输入密码。", en: "The customer enters a PIN on the phone." },
  transaction_not_found: { zh: "业务不存在。", en: "No such transaction." },
};

const STYLE = `
:host { display: block; font: 14px/1.5 system-ui, "Noto Sans CJK SC", sans-serif; color: #1f2933;
  width: 360px; border: 1px solid #cbd2d9; border-radius: 10px; background: #fff; overflow: hidden; }
header { display: flex; align-items: center; gap: 8px; padding: 8px 12px; background: #102a43; color: #fff; }
header b { flex: 1; }
.badge { padding: 1px 8px; border-radius: 10px; background: #486581; font-size: 12px; }
.badge[data-presence="ready"] { background: #2f8132; }
.badge[data-presence="ringing"] { background: #c99a2e; }
.badge[data-presence="busy"] { background: #ba2525; }
section { padding: 8px 12px; border-top: 1px solid #e4e7eb; }
button { font: inherit; padding: 4px 12px; border-radius: 6px; border: 1px solid #9fb3c8; background: #f0f4f8; cursor: pointer; }
button.primary { background: #2680c2; border-color: #2680c2; color: #fff; }
button.danger { background: #ba2525; border-color: #ba2525; color: #fff; }
button:disabled { opacity: .5; cursor: default; }
.videos { position: relative; background: #000; height: 200px; }
.videos video { width: 100%; height: 100%; object-fit: cover; }
.videos video.local { position: absolute; right: 6px; bottom: 6px; width: 30%; height: 30%; border: 1px solid #fff; }
.chat ol { list-style: none; margin: 0 0 6px; padding: 0; max-height: 120px; overflow-y: auto; }
.chat li.mine { text-align: right; color: #2680c2; }
.row { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
input, select { font: inherit; padding: 3px 6px; border: 1px solid #9fb3c8; border-radius: 6px; min-width: 0; flex: 1; }
label { display: flex; gap: 6px; align-items: center; margin: 2px 0; }
.muted { color: #627d98; }
.error { color: #ba2525; min-height: 1em; }
[hidden] { display: none !important; }
`;

const TEMPLATE = `
<style>${STYLE}</style>
<header><b id="title"></b><span class="badge" id="presence"></span></header>
<section class="row" id="presence-controls">
  <button id="ready"></button><button id="break"></button><span class="muted" id="employee"></span>
</section>
<section id="ring" hidden>
  <div><b id="ring-title"></b> <span id="ring-business"></span> · <span id="ring-customer"></span></div>
  <div class="row"><button class="primary" id="accept"></button><button id="reject"></button></div>
</section>
<section id="call" hidden>
  <div class="row"><b id="call-business"></b><span class="muted" id="call-number"></span>
    <span class="muted" id="media-status"></span><button class="danger" id="hangup"></button></div>
</section>
<div class="videos" id="videos" hidden>
  <video id="remote" autoplay playsinline></video>
  <video id="local" class="local" autoplay playsinline muted></video>
</div>
<section class="chat" id="chat" hidden>
  <ol id="messages"></ol>
  <form class="row" id="chat-form"><input id="chat-input" maxlength="1000"><button id="send" type="submit"></button></form>
</section>
<section id="tx" hidden>
  <b id="tx-title"></b>
  <form id="tx-start">
    <div class="row"><select id="scenario"></select></div>
    <div id="fields"></div>
    <button class="primary" id="start" type="submit"></button>
  </form>
  <div id="tx-current" hidden>
    <div><b id="tx-name"></b> · <span id="tx-state"></span></div>
    <ul id="tx-summary" class="muted"></ul>
    <div id="tx-checks"></div>
    <div class="row">
      <button id="verify"></button><button id="confirm"></button>
      <button class="primary" id="submit"></button><button id="cancel"></button>
    </div>
  </div>
</section>
<section class="muted" id="idle"></section>
<div class="error" id="error" role="alert"></div>
`;

const CHECKS: Record<string, { zh: string; en: string }> = {
  id_card: { zh: "身份证件", en: "ID card" },
  face: { zh: "人脸", en: "Face" },
  online_id: { zh: "公安联网核查", en: "Online ID check" },
  principal: { zh: "委托人身份", en: "Principal's identity" },
};

const OPEN_STATES = new Set(["draft", "identity_verified", "customer_confirmed", "submitted"]);

export class RbSeatElement extends HTMLElement {
  static get observedAttributes(): string[] {
    return ["token", "server", "lang"];
  }

  desk: SeatDesk | null = null;
  tokenProvider: (() => Promise<string>) | undefined;
  readonly #root: ShadowRoot;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.innerHTML = TEMPLATE;
  }

  get #t(): Words {
    return (this.getAttribute("lang") || "zh").startsWith("en") ? TEXT.en : TEXT.zh;
  }

  #el<T extends HTMLElement = HTMLElement>(id: string): T {
    return this.#root.getElementById(id) as T;
  }

  connectedCallback(): void {
    this.#label();
    this.#start();
  }

  disconnectedCallback(): void {
    this.desk?.close();
    this.desk = null;
  }

  attributeChangedCallback(name: string, before: string | null, after: string | null): void {
    if (name === "lang") this.#label();
    else if (before !== after && this.isConnected && this.desk === null) this.#start();
  }

  #label(): void {
    const t = this.#t;
    const ids: [string, keyof Words][] = [
      ["title", "title"], ["ready", "goReady"], ["break", "goBreak"], ["accept", "accept"],
      ["reject", "reject"], ["hangup", "hangup"], ["send", "send"], ["tx-title", "transaction"],
      ["start", "start"], ["verify", "verify"], ["confirm", "confirm"], ["submit", "submit"],
      ["cancel", "cancel"], ["idle", "noCall"],
    ];
    for (const [id, key] of ids) this.#el(id).textContent = t[key];
    this.#el<HTMLInputElement>("chat-input").placeholder = t.chatPlaceholder;
  }

  #start(): void {
    const token = this.getAttribute("token");
    const server = this.getAttribute("server");
    if (!token || !server || this.desk) return;
    // The token is not kept in the DOM once read (it is a credential for a few minutes).
    this.removeAttribute("token");
    const desk = new SeatDesk({
      server,
      token,
      tokenProvider: this.tokenProvider,
      video: { local: this.#el<HTMLVideoElement>("local"), remote: this.#el<HTMLVideoElement>("remote") },
    });
    this.desk = desk;
    this.#bindDesk(desk);
    this.#bindControls(desk);
    this.#showPresence("connecting");
    desk.connect();
  }

  #fire(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #bindDesk(desk: SeatDesk): void {
    desk.on("presence", (e) => {
      this.#showPresence(e.presence);
      this.#el("employee").textContent = e.employeeNo;
      this.#fire("rb-presence", e);
    });
    desk.on("offer", (offer) => this.#showOffer(offer));
    desk.on("call", (call) => {
      this.#el("call").hidden = !call;
      this.#el("videos").hidden = !call;
      this.#el("chat").hidden = !call;
      this.#el("tx").hidden = !call;
      this.#el("idle").hidden = !!call;
      if (call) {
        this.#el("call-business").textContent = call.business;
        this.#el("call-number").textContent = call.number;
        this.#el("messages").replaceChildren();
        this.#el("error").textContent = "";
      }
      this.#fire("rb-call", call);
    });
    desk.on("ended", (e) => {
      this.#el("idle").textContent = this.#t.ended;
      this.#fire("rb-ended", e);
    });
    desk.on("media", (e) => (this.#el("media-status").dataset.status = e.status));
    desk.on("chat", (m) => {
      const li = document.createElement("li");
      li.className = m.mine ? "mine" : "";
      li.textContent = m.mine ? m.text : `${m.senderName}：${m.text}`; // text, never HTML
      this.#el("messages").append(li);
      li.scrollIntoView({ block: "nearest" });
    });
    desk.on("transaction", (tx) => {
      this.#showTransaction(tx);
      this.#fire("rb-transaction", tx);
    });
    desk.on("error", (err) => this.#showError(err.code));
  }

  #act(fn: () => Promise<unknown>): void {
    this.#el("error").textContent = "";
    fn().catch((err: unknown) => this.#showError(asError(err).code));
  }

  #bindControls(desk: SeatDesk): void {
    this.#el("ready").onclick = () => this.#act(() => desk.setPresence("ready"));
    this.#el("break").onclick = () => this.#act(() => desk.setPresence("break"));
    this.#el("accept").onclick = () => this.#act(() => desk.accept());
    this.#el("reject").onclick = () => this.#act(() => desk.reject());
    this.#el("hangup").onclick = () => this.#act(() => desk.hangup());
    this.#el<HTMLFormElement>("chat-form").onsubmit = (ev) => {
      ev.preventDefault();
      const input = this.#el<HTMLInputElement>("chat-input");
      const text = input.value;
      this.#act(async () => {
        await desk.sendChat(text);
        input.value = "";
      });
    };
    this.#el<HTMLSelectElement>("scenario").onchange = () => this.#showFields();
    this.#el<HTMLFormElement>("tx-start").onsubmit = (ev) => {
      ev.preventDefault();
      this.#act(() => desk.startTransaction(this.#el<HTMLSelectElement>("scenario").value, this.#form()));
    };
    this.#el("verify").onclick = () => this.#act(() => desk.verify(this.#checks()));
    this.#el("confirm").onclick = () => this.#act(() => desk.requestConfirm());
    this.#el("submit").onclick = () => this.#act(() => desk.submit());
    this.#el("cancel").onclick = () => this.#act(() => desk.cancelTransaction("agent"));
  }

  #showPresence(presence: SeatPresence): void {
    const badge = this.#el("presence");
    badge.textContent = this.#t[presence];
    badge.dataset.presence = presence;
    this.dataset.presence = presence;
    const canToggle = ["ready", "break", "offline", "after_call_work"].includes(presence);
    this.#el<HTMLButtonElement>("ready").disabled = !canToggle || presence === "ready";
    this.#el<HTMLButtonElement>("break").disabled = !canToggle || presence === "break";
  }

  #showOffer(offer: SeatOffer | null): void {
    this.#el("ring").hidden = !offer;
    if (!offer) return;
    this.#el("ring-title").textContent = offer.transfer ? this.#t.transfer : this.#t.incoming;
    this.#el("ring-business").textContent = offer.business;
    this.#el("ring-customer").textContent = offer.customerName;
  }

  #showScenarios(): void {
    const select = this.#el<HTMLSelectElement>("scenario");
    const scenarios = this.desk?.scenarios ?? [];
    if (select.options.length === scenarios.length + 1) return;
    const placeholder = new Option(this.#t.choose, "");
    select.replaceChildren(placeholder, ...scenarios.map((s) => new Option(s.name, s.code)));
    this.#showFields();
  }

  #scenario(): Scenario | undefined {
    const code = this.#el<HTMLSelectElement>("scenario").value;
    return this.desk?.scenarios.find((s) => s.code === code);
  }

  #showFields(): void {
    const fields = this.#scenario()?.fields ?? [];
    const rows = fields.map((f) => {
      const label = document.createElement("label");
      label.textContent = f.label;
      const input =
        f.choices.length > 0 ? document.createElement("select") : document.createElement("input");
      if (input instanceof HTMLSelectElement) {
        input.append(...f.choices.map((c) => new Option(c.label, c.value)));
      } else {
        input.maxLength = f.max_length;
        input.required = f.required;
      }
      input.name = f.name;
      label.append(input);
      return label;
    });
    this.#el("fields").replaceChildren(...rows);
  }

  #form(): Record<string, string> {
    const form: Record<string, string> = {};
    for (const input of this.#el("fields").querySelectorAll<HTMLInputElement | HTMLSelectElement>("input, select")) {
      if (input.value !== "") form[input.name] = input.value;
    }
    return form;
  }

  #checks(): Record<string, boolean> {
    const checks: Record<string, boolean> = {};
    for (const box of this.#el("tx-checks").querySelectorAll<HTMLInputElement>("input[type=checkbox]")) {
      checks[box.name] = box.checked;
    }
    return checks;
  }

  #showTransaction(tx: SeatTransaction | null): void {
    const open = !!tx && OPEN_STATES.has(tx.state);
    this.#el("tx-start").hidden = open;
    this.#el("tx-current").hidden = !tx;
    this.#showScenarios();
    if (!tx) return;
    this.#el("tx-name").textContent = tx.name;
    const state = this.#el("tx-state");
    state.textContent = tx.state_label + (tx.result_message ? ` · ${tx.result_message}` : "");
    state.dataset.state = tx.state;
    this.#el("tx-summary").replaceChildren(
      ...tx.summary.map((item) => {
        const li = document.createElement("li");
        li.textContent = `${item.label}：${item.value}`;
        return li;
      }),
    );
    const scenario = this.desk?.scenarios.find((s) => s.code === tx.scenario);
    const checks = tx.state === "draft" ? (scenario?.identity_checks ?? []) : [];
    this.#el("tx-checks").replaceChildren(
      ...checks.map((name) => {
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.name = name;
        const words = CHECKS[name] ?? { zh: "核验项", en: "Check" };
        label.append(box, this.#t === TEXT.en ? words.en : words.zh);
        return label;
      }),
    );
    this.#el<HTMLButtonElement>("verify").disabled = tx.state !== "draft";
    this.#el<HTMLButtonElement>("confirm").disabled = tx.state !== "identity_verified";
    this.#el<HTMLButtonElement>("submit").disabled = tx.state !== "customer_confirmed" || tx.customer_action === "enter_pin";
    this.#el<HTMLButtonElement>("cancel").disabled = !open;
  }

  #showError(code: string): void {
    const error = this.#el("error");
    const words = ERRORS[code];
    // Words for a person, never the code itself (the host page gets it in `rb-error`).
    error.textContent = words ? (this.#t === TEXT.en ? words.en : words.zh) : this.#t.failed;
    error.dataset.code = code;
    this.#fire("rb-error", { code });
  }
}

/** Define `<rb-seat>` (once). */
export function defineSeatElement(name = "rb-seat"): void {
  if (!customElements.get(name)) customElements.define(name, RbSeatElement);
}
