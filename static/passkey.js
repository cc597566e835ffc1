// WMDA secret portal: passkeys (issue 19). Self-hosted, no dependencies, allowed by the CSP
// (script-src 'self'; connect-src 'self'). It only carries data between the portal and the
// browser's WebAuthn API: every check (origin, challenge, signature, counter) is the server's.
//
// Elements with data-passkey="register" (a form), "second-step" or "passwordless" (a block
// with a [data-passkey-start] button) are shown, and wired, only where the browser has WebAuthn.
"use strict";

(() => {
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  // base64url without padding <-> bytes (WebAuthn's binary fields travel as such in JSON).
  const decode = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  };
  const encode = (buffer) => {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  // The server's options may carry null for "not set"; WebAuthn wants such members absent.
  const withoutNulls = (value) => {
    if (Array.isArray(value)) return value.map(withoutNulls);
    if (value && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]),
      );
    }
    return value;
  };

  const creationOptions = (json) => {
    const pk = withoutNulls(json.publicKey);
    pk.challenge = decode(pk.challenge);
    pk.user.id = decode(pk.user.id);
    pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: decode(c.id) }));
    // A discoverable credential, so it can also sign in without a password (DESIGN.md
    // section 11: the script asks for it; the server's checks stay the library's).
    pk.authenticatorSelection = { ...(pk.authenticatorSelection || {}), residentKey: "required", requireResidentKey: true };
    pk.extensions = { ...(pk.extensions || {}), credProps: true };
    return { publicKey: pk };
  };

  const requestOptions = (json) => {
    const pk = withoutNulls(json.publicKey);
    pk.challenge = decode(pk.challenge);
    pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: decode(c.id) }));
    return { publicKey: pk };
  };

  const registrationAnswer = (cred) => {
    const extensions = cred.getClientExtensionResults();
    return {
      id: cred.id,
      rawId: encode(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: encode(cred.response.attestationObject),
        clientDataJSON: encode(cred.response.clientDataJSON),
      },
      extensions: extensions.credProps ? { credProps: { rk: !!extensions.credProps.rk } } : {},
    };
  };

  const assertionAnswer = (cred) => ({
    id: cred.id,
    rawId: encode(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: encode(cred.response.authenticatorData),
      clientDataJSON: encode(cred.response.clientDataJSON),
      signature: encode(cred.response.signature),
      userHandle: cred.response.userHandle ? encode(cred.response.userHandle) : null,
    },
    extensions: {},
  });

  // POST to the portal; the answer's JSON, with an "error" when the status is not 2xx.
  const post = async (url, body, json) => {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": json ? "application/json" : "application/x-www-form-urlencoded" },
      body: json ? JSON.stringify(body) : body,
    });
    // The session ended (the portal sends a signed-out request to the sign-in page): go there.
    if (response.redirected) {
      window.location.assign(response.url);
      return { error: "Your session has ended: sign in again." };
    }
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    if (!response.ok && !data.error) data.error = `The portal answered ${response.status}. Reload the page and try again.`;
    return data;
  };

  // What the browser's refusal means to the user.
  const browserMessage = (error) => {
    if (error && error.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again.";
    if (error && error.name === "InvalidStateError") return "This device already holds a passkey for your account here.";
    if (error && error.name === "SecurityError") return "The browser refused: passkeys need the portal at its own address.";
    return "The browser could not use a passkey. Try again, or use your authentication code.";
  };

  const showError = (host, text) => {
    const box = host.querySelector("[data-passkey-error]");
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
  };

  // Runs one ceremony: options from `optionsUrl`, the browser's part, the answer to `answerUrl`.
  const ceremony = async (host, button, { optionsUrl, optionsBody, answerUrl, create }) => {
    showError(host, "");
    button.disabled = true;
    try {
      const options = await post(optionsUrl, optionsBody, false);
      if (options.error) return showError(host, options.error);
      let cred;
      try {
        cred = create
          ? await navigator.credentials.create(creationOptions(options))
          : await navigator.credentials.get(requestOptions(options));
      } catch (error) {
        return showError(host, browserMessage(error));
      }
      if (!cred) return showError(host, browserMessage(null));
      const answer = await post(answerUrl, create ? registrationAnswer(cred) : assertionAnswer(cred), true);
      if (answer.error) return showError(host, answer.error);
      if (answer.redirect) window.location.assign(answer.redirect);
    } catch {
      showError(host, "The portal could not be reached. Check your connection and try again.");
    } finally {
      button.disabled = false;
    }
  };

  for (const host of document.querySelectorAll("[data-passkey]")) {
    host.hidden = false;
    const kind = host.dataset.passkey;
    if (kind === "register") {
      host.addEventListener("submit", (event) => {
        event.preventDefault();
        const button = host.querySelector("button[type=submit]");
        const body = new URLSearchParams(new FormData(host));
        const answerUrl = host.dataset.answer ?? "/account/passkeys";
        ceremony(host, button, { optionsUrl: host.action, optionsBody: body, answerUrl, create: true });
      });
      continue;
    }
    const button = host.querySelector("[data-passkey-start]");
    if (!button) continue;
    button.addEventListener("click", () => {
      if (kind === "second-step") {
        ceremony(host, button, { optionsUrl: "/login/mfa/passkey/options", optionsBody: "", answerUrl: "/login/mfa/passkey" });
      } else if (kind === "passwordless") {
        const next = host.dataset.next ? `?next=${encodeURIComponent(host.dataset.next)}` : "";
        ceremony(host, button, { optionsUrl: "/login/passkey/options", optionsBody: "", answerUrl: `/login/passkey${next}` });
      }
    });
  }
})();
