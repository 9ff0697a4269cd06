// Hardhat Network (EDR) as a second node implementation for the tests: same chain id and dev
// accounts as anvil (Hardhat's default mnemonic is anvil's), automine, 30 M gas blocks.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      blockGasLimit: 30000000,
      accounts: { count: 10, accountsBalance: "10000000000000000000000" },
    },
  },
};
