/* Shared EIP-1193 helpers for the pay and link pages. Vanilla JS, no dependencies. */
"use strict";
window.Spacescribe = (function () {
  function provider() {
    if (!window.ethereum || typeof window.ethereum.request !== "function") {
      throw new UserError("No browser wallet found. Install or open a wallet (for example in its built-in browser) and reload.");
    }
    return window.ethereum;
  }

  function UserError(message) { this.message = message; }

  // Wallet errors by EIP-1193 code: say what happened in words a payer can act on.
  function explain(err) {
    if (err instanceof UserError) return err.message;
    var code = err && (err.code !== undefined ? err.code : (err.data && err.data.code));
    if (code === 4001) return "You rejected the request in your wallet; nothing was paid or changed.";
    if (code === 4100) return "Your wallet did not allow this page to use your account.";
    if (code === 4900 || code === 4901) return "Your wallet is not connected to a network.";
    if (code === -32002) return "Your wallet already has a request waiting; open it and answer.";
    return "Your wallet reported an error: " + ((err && err.message) || String(err));
  }

  async function account() {
    var accounts = await provider().request({ method: "eth_requestAccounts" });
    if (!accounts || !accounts.length) throw new UserError("Your wallet did not share an account.");
    return String(accounts[0]);
  }

  // Make sure the wallet is on the chain the invoice is priced on.
  async function ensureChain(chainId) {
    var eth = provider();
    var want = "0x" + Number(chainId).toString(16);
    var have = await eth.request({ method: "eth_chainId" });
    if (parseInt(have, 16) === Number(chainId)) return;
    try {
      await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: want }] });
    } catch (err) {
      if (err && err.code === 4001) throw new UserError("You declined to switch networks; nothing was paid.");
      throw new UserError("Wrong network: your wallet is on chain " + parseInt(have, 16) +
        " but this payment is on chain " + chainId + ". Switch network in your wallet and try again.");
    }
    have = await eth.request({ method: "eth_chainId" });
    if (parseInt(have, 16) !== Number(chainId)) {
      throw new UserError("Wrong network: your wallet is still on chain " + parseInt(have, 16) +
        "; this payment is on chain " + chainId + ".");
    }
  }

  async function getJSON(url) {
    var r = await fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" });
    var data = await r.json().catch(function () { return {}; });
    if (!r.ok) throw new UserError(data.message || ("The server answered " + r.status + "."));
    return data;
  }

  async function postJSON(url, body) {
    var r = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    var data = await r.json().catch(function () { return {}; });
    data.httpStatus = r.status;
    return data;
  }

  function utf8Hex(text) {
    var bytes = new TextEncoder().encode(text);
    var out = "0x";
    for (var i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
    return out;
  }

  function show(el, text, kind) {
    el.textContent = text;
    el.className = "result " + (kind || "");
  }

  return { provider: provider, explain: explain, account: account, ensureChain: ensureChain,
           getJSON: getJSON, postJSON: postJSON, utf8Hex: utf8Hex, show: show, UserError: UserError };
})();
