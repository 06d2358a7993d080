/* Pay page: sign the server-chosen EIP-3009 authorization and submit it. */
"use strict";
(function () {
  var S = window.Spacescribe;
  var section = document.getElementById("pay");
  var button = document.getElementById("pay-button");
  var result = document.getElementById("result");
  var statusBadge = document.getElementById("status");
  var invoice = section.dataset.invoice;
  var chainId = Number(section.dataset.chain);
  var base = "/pay/" + encodeURIComponent(invoice);

  function setStatus(s) {
    statusBadge.textContent = s;
    statusBadge.className = "badge " + s;
  }

  async function pay() {
    button.disabled = true;
    S.show(result, "Connecting to your wallet…");
    try {
      var payer = await S.account();
      await S.ensureChain(chainId);
      var auth = await S.getJSON(base + "/authorization?payer=" + encodeURIComponent(payer));
      S.show(result, "Confirm the payment of " + auth.amount + " USDC in your wallet…");
      var signature = await S.provider().request({
        method: "eth_signTypedData_v4",
        params: [payer, JSON.stringify(auth.typedData)],
      });
      S.show(result, "Verifying and settling on chain…");
      var out = await S.postJSON(base, { authorization: auth.typedData.message, signature: signature });
      if (out.status === "credited") {
        setStatus("credited");
        S.show(result, out.message, "ok");
        var back = document.getElementById("back");
        if (back) back.hidden = false;
        // paid: nothing left to pay, so no second way to pay either
        button.hidden = true;
        var direct = document.querySelector(".direct");
        if (direct) direct.hidden = true;
        return;
      }
      if (out.status === "pending") {
        setStatus("paid");
        S.show(result, out.message, "");
        return;
      }
      S.show(result, "Refused: " + (out.message || "the payment was refused."), "bad");
      button.disabled = false;
    } catch (err) {
      S.show(result, S.explain(err), "bad");
      button.disabled = false;
    }
  }

  button.addEventListener("click", pay);
})();
