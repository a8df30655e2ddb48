// TruSec passkeys: the WebAuthn ceremonies of the hosted pages. Served from
// our own origin under the pages' CSP (no inline script). Progressive: every
// page works without it, and it does nothing where the browser has no
// WebAuthn. A form marked data-passkey="register|sign-in|second-factor"
// fetches its ceremony's options from data-options (relative to the page),
// asks the authenticator, and submits the answer in its hidden `credential`
// field with the ceremony's `token`; the server does the rest.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function b64u(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i++) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function unb64u(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function ids(list) {
    (list || []).forEach(function (c) {
      c.id = unb64u(c.id);
    });
  }

  function extensions(credential) {
    return credential.getClientExtensionResults ? credential.getClientExtensionResults() : {};
  }

  function attestationJSON(c) {
    return {
      id: c.id,
      rawId: b64u(c.rawId),
      type: c.type,
      response: {
        attestationObject: b64u(c.response.attestationObject),
        clientDataJSON: b64u(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : undefined
      },
      extensions: extensions(c)
    };
  }

  function assertionJSON(c) {
    return {
      id: c.id,
      rawId: b64u(c.rawId),
      type: c.type,
      response: {
        authenticatorData: b64u(c.response.authenticatorData),
        clientDataJSON: b64u(c.response.clientDataJSON),
        signature: b64u(c.response.signature),
        userHandle: c.response.userHandle ? b64u(c.response.userHandle) : null
      },
      extensions: extensions(c)
    };
  }

  function field(form, name) {
    return form.elements.namedItem(name);
  }

  function say(form, text) {
    var box = form.querySelector("[data-passkey-error]");
    if (box) {
      box.textContent = text;
      box.hidden = !text;
    }
  }

  // The ceremony's options, and its token into the form.
  function start(form) {
    var body = new URLSearchParams();
    ["csrf_token", "interaction", "token"].forEach(function (name) {
      var input = field(form, name);
      if (input && input.value) {
        body.set(name, input.value);
      }
    });
    var url = new URL(form.getAttribute("data-options"), document.baseURI);
    return fetch(url, { method: "POST", body: body, credentials: "same-origin" }).then(
      function (resp) {
        if (!resp.ok) {
          throw new Error("options " + resp.status);
        }
        return resp.json();
      }
    ).then(function (reply) {
      field(form, "token").value = reply.token;
      return reply.options;
    });
  }

  function answer(form, json) {
    field(form, "credential").value = JSON.stringify(json);
    form.submit();
  }

  function register(form) {
    return start(form).then(function (options) {
      var o = options.publicKey;
      o.challenge = unb64u(o.challenge);
      o.user.id = unb64u(o.user.id);
      ids(o.excludeCredentials);
      return navigator.credentials.create({ publicKey: o });
    }).then(function (c) {
      answer(form, attestationJSON(c));
    });
  }

  // mediation: "conditional" (from the e-mail field's autofill) or
  // undefined (the button: the browser's own dialog).
  function authenticate(form, mediation, signal) {
    return start(form).then(function (options) {
      var o = options.publicKey;
      o.challenge = unb64u(o.challenge);
      ids(o.allowCredentials);
      var request = { publicKey: o, signal: signal };
      if (mediation) {
        request.mediation = mediation;
      }
      return navigator.credentials.get(request);
    }).then(function (c) {
      if (c) {
        answer(form, assertionJSON(c));
      }
    });
  }

  function failed(form) {
    return function (e) {
      if (e && e.name === "AbortError") {
        return;
      }
      say(form, "The passkey did not work. You can try again.");
    };
  }

  var conditional = null;

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.hidden = false;
    var kind = form.getAttribute("data-passkey");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say(form, "");
      if (conditional) {
        conditional.abort();
        conditional = null;
      }
      var run = kind === "register" ? register(form) : authenticate(form, undefined, undefined);
      run.catch(failed(form));
    });
    if (kind === "sign-in" && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (yes) {
        if (!yes) {
          return;
        }
        conditional = new AbortController();
        authenticate(form, "conditional", conditional.signal).catch(failed(form));
      });
    }
  });
})();
