// Exact conversions between coin amounts typed by a person and wei (BigInt, never floats).

export const DECIMALS = 18n;

export function toWei(text, decimals = 18) {
  const s = String(text).trim();
  if (!/^\d+(\.\d+)?$/.test(s)) throw new Error('must be a number like 0.5');
  const [whole, frac = ''] = s.split('.');
  if (frac.length > decimals) throw new Error(`has more than ${decimals} decimals`);
  return BigInt(whole) * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, '0') || '0');
}

export function formatWei(wei, digits = 6) {
  if (wei === null || wei === undefined) return '–';
  const v = BigInt(wei);
  const neg = v < 0n; const a = neg ? -v : v;
  const whole = a / 10n ** DECIMALS;
  let frac = (a % 10n ** DECIMALS).toString().padStart(18, '0').slice(0, digits).replace(/0+$/, '');
  if (!frac && a > 0n && whole === 0n) return `${neg ? '-' : ''}<0.${'0'.repeat(digits - 1)}1`;
  return `${neg ? '-' : ''}${whole}${frac ? '.' + frac : ''}`;
}

export function weiToNumber(wei) { return Number(BigInt(wei)) / 1e18; }

export function shortHex(h, n = 6) { return h && h.length > 2 * n + 2 ? `${h.slice(0, n + 2)}…${h.slice(-n)}` : (h || ''); }

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function when(unix) {
  // null: never due by time alone; 0 or a past time: due as soon as the next block is mined.
  if (unix === null || unix === undefined) return '–';
  if (unix <= Date.now() / 1000) return 'due now';
  const d = new Date(unix * 1000);
  const diff = unix - Date.now() / 1000;
  const rel = Math.abs(diff) < 3600 ? ` (${diff >= 0 ? 'in ' : ''}${Math.round(Math.abs(diff))} s${diff < 0 ? ' ago' : ''})` : '';
  return d.toLocaleString() + rel;
}

export const isAddress = (s) => /^0x[0-9a-fA-F]{40}$/.test(String(s).trim());
