/* Link page: Sign-In with Ethereum (EIP-4361) with the fields the server issued. */
"use strict";
(function () {
  var S = window.Spacescribe;
  var section = document.getElementById("link");
  var button = document.getElementById("link-button");
  var result = document.getElementById("result");
  var base = "/link/" + encodeURIComponent(section.dataset.token);

  // EIP-4361 message text, field order as the standard fixes it.
  function siweMessage(f) {
    return f.domain + " wants you to sign in with your Ethereum account:\n" +
      f.address + "\n\n" + f.statement + "\n\n" +
      "URI: " + f.uri + "\n" +
      "Version: " + f.version + "\n" +
      "Chain ID: " + f.chainId + "\n" +
      "Nonce: " + f.nonce + "\n" +
      "Issued At: " + f.issuedAt + "\n" +
      "Expiration Time: " + f.expirationTime;
  }

  async function link() {
    button.disabled = true;
    S.show(result, "Connecting to your wallet…");
    try {
      var address = await S.account();
      var fields = await S.getJSON(base + "/nonce?address=" + encodeURIComponent(address));
      var message = siweMessage(fields);
      S.show(result, "Sign the message in your wallet…");
      var signature = await S.provider().request({
        method: "personal_sign",
        params: [S.utf8Hex(message), address],
      });
      var out = await S.postJSON(base, { message: message, signature: signature });
      if (out.status === "linked") {
        S.show(result, "Linked: " + out.address + ". You can close this page and go back to the chat.", "ok");
        button.hidden = true;  // the link is used up
        return;
      }
      S.show(result, "Refused: " + (out.message || "the wallet could not be linked."), "bad");
      button.disabled = out.code === "link_used" || out.code === "link_expired";
    } catch (err) {
      S.show(result, S.explain(err), "bad");
      button.disabled = false;
    }
  }

  button.addEventListener("click", link);
})();
