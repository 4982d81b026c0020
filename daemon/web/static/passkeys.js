// Passkeys (WebAuthn). A form with data-passkey ("create" or "get") first posts its fields to its
// data-options URL for the ceremony's options (CSRF-checked like any form), lets the browser's
// authenticator answer, then is sent itself with the answer in its `credential` field: what comes back is
// an ordinary page. Kept out of the templates: the Content-Security-Policy allows no inline script.
"use strict";

(function () {
  const status = document.getElementById("passkey-status");

  function say(text) {
    if (status) status.textContent = text;
  }

  async function ceremony(form) {
    const answer = await fetch(form.dataset.options, {
      method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
    });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.detail || body.title);
    const credential = form.dataset.passkey === "create"
      ? await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(body)})
      : await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(body)});
    form.elements.credential.value = JSON.stringify(credential.toJSON());
    // The password (or code) was for the options; the answer does not need it sent again.
    for (const field of form.querySelectorAll("input[type=password], input[name=code]")) field.value = "";
    form.submit();
  }

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say("Waiting for your passkey…");
      ceremony(form).catch(function (error) {
        say(error.message || String(error));
      });
    });
  }
})();
