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
      if (done(out)) return;
      button.disabled = false;
    } catch (err) {
      S.show(result, S.explain(err), "bad");
      button.disabled = false;
    }
  }

  // Shows a payment's outcome; true when nothing is left to do on this page.
  function done(out) {
    if (out.status === "credited") {
      setStatus("credited");
      S.show(result, out.message, "ok");
      var back = document.getElementById("back");
      if (back) back.hidden = false;
      // paid: nothing left to pay, so no second way to pay either
      button.hidden = true;
      var demo = document.getElementById("demo-button");
      if (demo) demo.hidden = true;
      var direct = document.querySelector(".direct");
      if (direct) direct.hidden = true;
      return true;
    }
    if (out.status === "pending") {
      setStatus("paid");
      S.show(result, out.message, "");
      return true;
    }
    S.show(result, "Refused: " + (out.message || "the payment was refused."), "bad");
    return false;
  }

  // Test mode only: the server signs with its demo wallet and pays through the same path.
  async function payWithDemo() {
    button.disabled = true;
    demoButton.disabled = true;
    S.show(result, "Paying with the demo wallet (test USDC)…");
    try {
      var out = await S.postJSON(base + "/demo", {});
      if (done(out)) return;
    } catch (err) {
      S.show(result, S.explain(err), "bad");
    }
    button.disabled = false;
    demoButton.disabled = false;
  }

  button.addEventListener("click", pay);
  var demoButton = document.getElementById("demo-button");
  if (demoButton) demoButton.addEventListener("click", payWithDemo);
})();
