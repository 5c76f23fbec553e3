/* Shared page helpers: error texts, time formats, small DOM helpers (no inline script: CSP). */
(function () {
  "use strict";

  // The catalog from /jsi18n/ defines these; keep pages usable if it failed to load.
  if (typeof window.gettext !== "function") {
    window.gettext = function (s) { return s; };
    window.ngettext = function (s, p, n) { return n === 1 ? s : p; };
    window.interpolate = function (fmt, obj) {
      return fmt.replace(/%\((\w+)\)s/g, function (_, k) { return String(obj[k]); });
    };
  }

  const RB = (window.RB = window.RB || {});

  /** What a person reads for an error code (an SDK or server error, a core result code): the
   * catalogue of remotebank/errors.py in the page's language (/jsi18n/errors.js), never the
   * code. `params` picks a variant: {tries_left: 2} → "wrong_pin.tries_left" filled in. A
   * code with a dot ("locked.agent") names a variant itself. */
  RB.errorText = function (err, params) {
    const messages = window.RB_ERROR_MESSAGES || {};
    const has = (key) => Object.prototype.hasOwnProperty.call(messages, key);
    const code = typeof err === "string" ? err : err && err.code;
    if (code && params) {
      for (const name of Object.keys(params)) {
        if (has(code + "." + name)) return interpolate(messages[code + "." + name], params, true);
      }
    }
    if (code && has(code)) return messages[code];
    return has("failed") ? messages.failed : gettext("操作没有成功，请重试。");
  };

  RB.END_REASONS = {
    customer_cancelled: gettext("客户取消了排队"),
    customer_hangup: gettext("客户挂断了通话"),
    agent_hangup: gettext("座席挂断了通话"),
    abandoned: gettext("客户已离开"),
    customer_lost: gettext("客户离开页面后未返回，通话中断"),
    agent_lost: gettext("座席工作台连接中断"),
    system: gettext("系统结束了通话"),
  };

  const lang = document.documentElement.lang || undefined;
  const timeFmt = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
  const clockFmt = new Intl.DateTimeFormat(lang, {
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });

  RB.parseDate = function (value) {
    if (!value) return null;
    const d = new Date(value);
    return isNaN(d.getTime()) ? null : d;
  };
  RB.formatTime = function (date) { return date ? timeFmt.format(date) : ""; };
  RB.formatClock = function (date) { return date ? clockFmt.format(date) : ""; };
  RB.formatDuration = function (seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (n) => String(n).padStart(2, "0");
    return (h ? h + ":" + pad(m) : pad(m)) + ":" + pad(s % 60);
  };

  RB.uuid4 = function () {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; getRandomValues does not.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  };

  /** document.createElement with a class and text (always textContent, never HTML). */
  RB.el = function (tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };

  /** A stack of dismissible error messages in a role=alert container. */
  class ErrorBox {
    constructor(container) {
      this.container = container;
    }
    add(err, options) {
      const text = typeof err === "string" ? err : RB.errorText(err);
      const item = RB.el("div", "alert alert-error");
      item.appendChild(RB.el("span", "alert-text", text));
      // The code stays out of sight (people read the sentence); support and tests find it here.
      if (err && err.code) item.dataset.code = err.code;
      const close = RB.el("button", "alert-close", "×");
      close.type = "button";
      close.setAttribute("aria-label", gettext("关闭"));
      close.addEventListener("click", () => item.remove());
      item.appendChild(close);
      this.container.appendChild(item);
      while (this.container.children.length > 4) this.container.firstElementChild.remove();
      const ttl = options && options.sticky ? 0 : 12000;
      if (ttl) setTimeout(() => item.remove(), ttl);
      return item;
    }
    clear() {
      this.container.replaceChildren();
    }
  }
  RB.ErrorBox = ErrorBox;

  /** A button that asks for a second press before acting (hang-up must not be a slip). */
  RB.twoStep = function (button, confirmText, action) {
    const original = button.textContent;
    let timer = null;
    const reset = () => {
      clearTimeout(timer);
      timer = null;
      button.textContent = original;
      delete button.dataset.confirming;
    };
    button.addEventListener("click", () => {
      if (button.dataset.confirming) {
        reset();
        action();
        return;
      }
      button.dataset.confirming = "1";
      button.textContent = confirmText;
      timer = setTimeout(reset, 4000);
    });
    return reset;
  };

  /** Hide a video's placeholder once media plays (the media layer attaches the streams). */
  RB.watchVideo = function (video) {
    const box = video.parentElement;
    video.addEventListener("playing", () => box.classList.add("has-media"));
    video.addEventListener("emptied", () => box.classList.remove("has-media"));
  };

  document.addEventListener("DOMContentLoaded", function () {
    // Language selector: submit on change; the button stays for keyboard and no-JS use.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    // Copy buttons (demo page).
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      const target = document.getElementById(button.dataset.copy);
      if (!target || !navigator.clipboard) {
        button.hidden = true;
        return;
      }
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(target.textContent.trim()).then(
          () => { button.textContent = gettext("已复制"); },
          () => { button.textContent = gettext("复制失败"); },
        );
      });
    });
  });
})();
