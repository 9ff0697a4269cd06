// The backend's HTTP API, with one error shape for everything that can go wrong.

export class ApiError extends Error {
  constructor(status, code, message, field = null, details = null) {
    super(message);
    this.status = status; this.code = code; this.field = field; this.details = details;
  }
}

const BIG = /^-?\d+$/;

// JSON.parse that keeps integers beyond 2^53 exact (as decimal strings): typed data carries wei
// amounts, and a rounded amount would make the wallet sign different terms than the API checks.
export function parseJSON(text) {
  let sawContext = false;
  const value = JSON.parse(text, function (key, v, context) {
    if (context !== undefined) sawContext = true;
    if (typeof v === 'number' && !Number.isSafeInteger(v) && context && BIG.test(context.source)) return context.source;
    return v;
  });
  if (sawContext || !/\d{16}/.test(text)) return value;
  // Older engines without the reviver's source text: quote long bare integers first.
  return JSON.parse(text.replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
}

export async function request(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, 'unreachable', 'The backend is unreachable: check that the Autometa API is running.');
  }
  const text = await response.text();
  let data = null;
  try { data = text ? parseJSON(text) : null; } catch { data = null; }
  if (!response.ok) {
    if (data && data.error) throw new ApiError(response.status, data.error, data.message, data.field, data.details);
    const code = response.status >= 500 ? 'unreachable' : 'http_error';
    throw new ApiError(response.status, code, `The backend answered ${response.status}${response.status >= 502 ? ' (is it running?)' : ''}.`);
  }
  return data;
}

// The chain chain-scoped requests name (`?chain=`, a name from GET /api/chains); null: the API's
// default chain. The dashboard follows the wallet's chain with it.
let chain = null;
export function setChain(name) { chain = name || null; }
export function currentChain() { return chain; }

function scoped(path, name = chain) {
  if (!name) return path;
  return `${path}${path.includes('?') ? '&' : '?'}chain=${encodeURIComponent(name)}`;
}

export const api = {
  chains: () => request('GET', '/api/chains'),
  health: () => request('GET', scoped('/api/utils/healthz')).catch((e) => { if (e.status === 503) return null; throw e; }),
  contracts: () => request('GET', scoped('/api/utils/contracts')),
  adminPending: () => request('GET', scoped('/api/utils/admin/pending')),
  assets: () => request('GET', '/api/price/assets'),
  price: (symbol) => request('GET', scoped(`/api/price/${encodeURIComponent(symbol)}`)),
  workers: () => request('GET', '/api/workers?within_s=120'),
  // history and an owner's list span every chain unless one is named (each item names its chain)
  executions: (address) => request('GET', `/api/executions?limit=50${address ? `&user=${address}` : ''}`),
  escrow: (address) => request('GET', scoped(`/api/escrow/${address}`)),
  // without `only` (a chain name): the owner's workflows on every chain
  workflows: (address, only = null) => request('GET', scoped(`/api/workflow/user/${address}?limit=100`, only)),
  stats: (address) => request('GET', `/api/stats?user=${address}`),
  triggerKinds: () => request('GET', '/api/dashboard/trigger-kinds'),
  validate: (body) => request('POST', scoped('/api/dashboard/validate'), body),
  prepareCreate: (body) => request('POST', scoped('/api/workflow/prepare'), body),
  create: (body) => request('POST', scoped('/api/workflow/create'), body),
  prepareStatus: (id, op, user, on = chain) => request('POST', scoped(`/api/workflow/${id}/${op}/prepare`, on), { user_address: user }),
  changeStatus: (id, op, body, on = chain) => request('POST', scoped(`/api/workflow/${id}/${op}`, on), body),
  relayedTx: (statusUrl) => request('GET', statusUrl),
};

// A relayed answer of 202 (sent, not mined yet): poll its status URL until it is no longer
// pending, calling onWait(status) each time. Resolves with the last status (state: mined,
// reverted, dropped, or still pending after `timeoutMs`).
export async function followRelayed(answer, onWait, timeoutMs = 300000, everyMs = 2000) {
  let status = answer;
  const until = Date.now() + timeoutMs;
  while (status && status.state === 'pending' && Date.now() < until) {
    onWait(status);
    await new Promise((r) => setTimeout(r, everyMs));
    try { status = await api.relayedTx(answer.status_url); } catch (err) {
      if (err instanceof ApiError && err.status > 0 && err.status < 500) throw err;  // a hiccup: poll again
    }
  }
  return status;
}
