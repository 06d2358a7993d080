// Rebuild the test token: `node contracts/build.js` (offline, npm `solc`).
// Writes contracts/TestUSDC.json = {contractName, compiler, abi, bytecode}.
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
fs.writeFileSync(path.join(__dirname, 'TestUSDC.json'), JSON.stringify(artifact, null, 1) + '\n');
console.log('wrote contracts/TestUSDC.json (' + c.evm.bytecode.object.length / 2 + ' bytes)');
