/* Storefront sign-in: Sign-In with Ethereum (EIP-4361) of the message the server issued. */
"use strict";
(function () {
  var S = window.Spacescribe;
  var button = document.getElementById("signin-button");
  var result = document.getElementById("signin-result");
  if (!button) return;

  async function signIn() {
    button.disabled = true;
    S.show(result, "Connecting to your wallet…");
    try {
      var address = await S.account();
      var ch = await S.getJSON("/session/challenge?address=" + encodeURIComponent(address));
      S.show(result, "Sign the message in your wallet…");
      var signature = await S.provider().request({
        method: "personal_sign",
        params: [S.utf8Hex(ch.message), ch.address],
      });
      var payload = Object.assign({}, ch.info, { address: ch.address, signature: signature });
      var out = await S.postJSON("/session", { payload: payload });
      if (out.status === "signed_in") {
        window.location.assign(button.dataset.next || "/");
        return;
      }
      S.show(result, "Refused: " + (out.message || "the sign-in was refused."), "bad");
    } catch (err) {
      S.show(result, S.explain(err), "bad");
    }
    button.disabled = false;
  }

  button.addEventListener("click", signIn);
})();
