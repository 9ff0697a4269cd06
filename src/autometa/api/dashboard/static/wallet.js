// The browser wallet (EIP-1193): accounts, eth_signTypedData_v4 and deposits. Errors become
// sentences a person can act on; a rejection is code 'rejected'.

export class WalletError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

function explain(err, what) {
  const code = err && (err.code ?? (err.data && err.data.code));
  if (code === 4001 || code === 'ACTION_REJECTED') {
    return new WalletError('rejected', `You rejected the ${what} in your wallet; nothing was sent.`);
  }
  if (code === 4100) return new WalletError('unauthorized', 'The wallet has not authorised this site: connect again.');
  if (code === 4900 || code === 4901) return new WalletError('disconnected', 'The wallet is not connected to a chain.');
  return new WalletError('wallet_error', `The wallet failed the ${what}: ${(err && err.message) || err}`);
}

export function hasWallet() { return typeof window.ethereum !== 'undefined' && window.ethereum !== null; }

export async function connect() {
  if (!hasWallet()) {
    throw new WalletError('no_wallet', 'No browser wallet found (EIP-1193). Install one, or enter an address to view.');
  }
  let accounts;
  try { accounts = await window.ethereum.request({ method: 'eth_requestAccounts' }); } catch (err) { throw explain(err, 'connection'); }
  if (!accounts || !accounts.length) throw new WalletError('no_account', 'The wallet shared no account.');
  let chainId = null;
  try { chainId = parseInt(await window.ethereum.request({ method: 'eth_chainId' }), 16); } catch { chainId = null; }
  return { address: accounts[0], chainId };
}

export async function signTypedData(address, typedData) {
  try {
    return await window.ethereum.request({ method: 'eth_signTypedData_v4', params: [address, JSON.stringify(typedData)] });
  } catch (err) { throw explain(err, 'signature'); }
}

export async function sendTransaction(tx) {
  try { return await window.ethereum.request({ method: 'eth_sendTransaction', params: [tx] }); } catch (err) {
    throw explain(err, 'transaction');
  }
}

export function onAccountsChanged(handler) {
  if (hasWallet() && typeof window.ethereum.on === 'function') window.ethereum.on('accountsChanged', handler);
}

// The wallet switched networks: `handler(chainId)` with the new chain id as a number.
export function onChainChanged(handler) {
  if (hasWallet() && typeof window.ethereum.on === 'function') {
    window.ethereum.on('chainChanged', (hex) => handler(parseInt(hex, 16)));
  }
}
