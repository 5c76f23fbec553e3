/* PIN pad (密码键盘) for the customer page: digits in a fresh random order each time it is
 * shown (crypto.getRandomValues), six dots, clear and backspace. No <input>: the digits live in
 * this object's array only, never in the DOM, storage or a form, and are handed to onComplete
 * as soon as six are pressed, then forgotten. Usage: const pad = new RB.PinPad(root);
 * pad.start(prompt, (pin) => ...).
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});
  const LENGTH = 6;

  function shuffled() {
    const digits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    const random = new Uint32Array(digits.length);
    crypto.getRandomValues(random);
    for (let i = digits.length - 1; i > 0; i--) {
      const j = random[i] % (i + 1);
      [digits[i], digits[j]] = [digits[j], digits[i]];
    }
    return digits;
  }

  /** `rb:pinpad` on document, detail {open}: dispatched synchronously before the pad shows. */
  function announce(open) {
    RB.pinPadOpen = open;
    document.dispatchEvent(new CustomEvent("rb:pinpad", { detail: { open: open } }));
  }

  class PinPad {
    constructor(root) {
      this.root = root;
      this.keys = root.querySelector("[data-pin-keys]");
      this.dots = Array.from(root.querySelectorAll("[data-pin-dot]"));
      this.prompt = root.querySelector("[data-pin-prompt]");
      this.digits = [];
      this.onComplete = null;
    }

    start(prompt, onComplete) {
      // Before the pad is visible: collab.js stops the customer's screen share on this event.
      if (this.root.hidden) announce(true);
      this.prompt.textContent = prompt;
      this.onComplete = onComplete;
      this.clear();
      this.root.hidden = false;
    }

    stop() {
      this.clear();
      this.onComplete = null;
      const wasOpen = !this.root.hidden;
      this.root.hidden = true;
      if (wasOpen) announce(false);
    }

    clear() {
      this.digits.fill("0");
      this.digits.length = 0;
      this.render();
      this.layout();
    }

    layout() {
      this.keys.textContent = "";
      const order = shuffled();
      const cells = order.slice(0, 9).concat(["clear", order[9], "back"]);
      for (const cell of cells) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "pin-key";
        if (cell === "clear") {
          button.textContent = gettext("清除");
          button.dataset.pinAction = "clear";
          button.addEventListener("click", () => this.clear());
        } else if (cell === "back") {
          button.textContent = "⌫";
          button.setAttribute("aria-label", gettext("退格"));
          button.dataset.pinAction = "back";
          button.addEventListener("click", () => {
            this.digits.pop();
            this.render();
          });
        } else {
          button.textContent = cell;
          button.dataset.pinDigit = cell;
          button.addEventListener("click", () => this.press(cell));
        }
        this.keys.appendChild(button);
      }
    }

    render() {
      this.dots.forEach((dot, i) => {
        dot.dataset.filled = i < this.digits.length ? "1" : "0";
      });
    }

    press(digit) {
      if (this.digits.length >= LENGTH) return;
      this.digits.push(digit);
      this.render();
      if (this.digits.length === LENGTH) {
        const pin = this.digits.join("");
        const done = this.onComplete;
        this.clear();
        if (done) done(pin);
      }
    }
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function b64utf8(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = "";
    bytes.forEach((b) => (binary += String.fromCharCode(b)));
    return btoa(binary);
  }

  /** The PIN encrypted to the PIN gateway's key ({suite, key_id, public_key}) for one field
   * of one transaction, with a nonce and a timestamp against replay (apps/banking/gateway/pin.py). */
  RB.sealPin = async function (pin, field, transactionId, key) {
    const body = JSON.stringify({
      pin: pin,
      nonce: hex(crypto.getRandomValues(new Uint8Array(16))),
      ts: Date.now(),
      tx: transactionId,
      field: field,
    });
    const ct = await RB.rbcrypto.raw.wrap(key.suite, key.public_key, b64utf8(body));
    return { suite: key.suite, key_id: key.key_id, ct: ct };
  };

  RB.PinPad = PinPad;
})();
