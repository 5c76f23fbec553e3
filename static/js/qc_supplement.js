/* QC report page: the 补录 upload form (templates/includes/qc_supplement_form.html). Before the
 * form is sent, the file's SHA-256 is computed here and put in the hidden `sha256` field, so the
 * server can tell that the bytes it received are the bytes chosen (digest_mismatch otherwise).
 */
(function () {
  "use strict";

  const form = document.getElementById("qc-supplement-form");
  if (!form || !window.crypto || !crypto.subtle) return;
  const status = form.querySelector("[data-qc-supplement-status]");
  const button = form.querySelector("button[type=submit]");

  async function sha256(file) {
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  form.addEventListener("submit", (ev) => {
    const file = form.elements.file.files[0];
    if (!file || form.dataset.hashed === "1") return;
    ev.preventDefault();
    button.disabled = true;
    status.textContent = gettext("正在计算校验值并上传……");
    sha256(file)
      .then((hex) => {
        form.elements.sha256.value = hex;
        form.dataset.hashed = "1";
        form.submit();
      })
      .catch(() => {
        status.textContent = gettext("无法读取所选文件，请重新选择。");
        button.disabled = false;
      });
  });
})();
