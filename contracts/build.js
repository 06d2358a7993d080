// Rebuild the test token: `node contracts/build.js` (offline, npm `solc`).
// Writes contracts/TestUSDC.json = {contractName, compiler, abi, bytecode}
// (or the path given as the first argument).
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const src = path.join(__dirname, 'TestUSDC.sol');
const input = {
  language: 'Solidity',
  sources: { 'TestUSDC.sol': { content: fs.readFileSync(src, 'utf8') } },
  settings: {
    evmVersion: 'paris',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { TestUSDC: ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const c = out.contracts['TestUSDC.sol'].TestUSDC;
const artifact = {
  contractName: 'TestUSDC',
  compiler: 'solc ' + solc.version(),
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
};
const out_path = process.argv[2] || path.join(__dirname, 'TestUSDC.json');
fs.writeFileSync(out_path, JSON.stringify(artifact, null, 1) + '\n');
console.log('wrote ' + out_path + ' (' + c.evm.bytecode.object.length / 2 + ' bytes)');
