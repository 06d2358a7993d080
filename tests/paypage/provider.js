// A test EIP-1193 provider: the page sees an injected wallet; signing happens in Python.
(function () {
  var cfg = window.__walletConfig;
  var chainId = cfg.chainId;
  function rpcError(code, message) { var e = new Error(message); e.code = code; return e; }
  window.ethereum = {
    isTestWallet: true,
    request: async function (args) {
      var p = args.params || [];
      switch (args.method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [cfg.address];
        case "eth_chainId":
          return "0x" + chainId.toString(16);
        case "wallet_switchEthereumChain":
          if (!cfg.allowSwitch) throw rpcError(4902, "Unrecognized chain ID " + p[0].chainId);
          chainId = parseInt(p[0].chainId, 16);
          return null;
        case "eth_signTypedData_v4":
          if (cfg.reject) throw rpcError(4001, "User rejected the request.");
          return await window.__walletSignTyped(p[0], p[1]);
        case "personal_sign":
          if (cfg.reject) throw rpcError(4001, "User rejected the request.");
          return await window.__walletPersonalSign(p[0], p[1]);
        default:
          throw rpcError(4200, "Unsupported method " + args.method);
      }
    },
  };
})();
