/* Signature pad (签名板): draw with a finger, pen or mouse on a canvas (pointer events);
 * toPng() gives a data: URL of a transparent PNG with black ink, or null when nothing is drawn.
 */
(function () {
  "use strict";

  const RB = (window.RB = window.RB || {});

  class SignaturePad {
    constructor(canvas) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d");
      this.strokes = 0;
      this.drawing = false;
      canvas.addEventListener("pointerdown", (ev) => this.down(ev));
      canvas.addEventListener("pointermove", (ev) => this.move(ev));
      ["pointerup", "pointercancel", "pointerleave"].forEach((t) =>
        canvas.addEventListener(t, () => (this.drawing = false)),
      );
      this.clear();
    }

    point(ev) {
      const rect = this.canvas.getBoundingClientRect();
      return {
        x: ((ev.clientX - rect.left) * this.canvas.width) / rect.width,
        y: ((ev.clientY - rect.top) * this.canvas.height) / rect.height,
      };
    }

    down(ev) {
      ev.preventDefault();
      this.drawing = true;
      this.last = this.point(ev);
      this.strokes += 1;
    }

    move(ev) {
      if (!this.drawing) return;
      ev.preventDefault();
      const p = this.point(ev);
      const ctx = this.ctx;
      ctx.beginPath();
      ctx.moveTo(this.last.x, this.last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      this.last = p;
    }

    clear() {
      const ctx = this.ctx;
      ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
      ctx.lineWidth = 4;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.strokeStyle = "#000";
      this.strokes = 0;
    }

    toPng() {
      return this.strokes ? this.canvas.toDataURL("image/png") : null;
    }
  }

  RB.SignaturePad = SignaturePad;
})();
