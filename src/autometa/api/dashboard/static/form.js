// The create form: reads the inputs into the API's create body, checks what the browser can
// (number formats), and asks the API (`/api/dashboard/validate`) for the rest as the user types,
// so the form and the relayer apply the same rules.

import { api } from './api.js';
import { allKinds, kindOf } from './triggers.js';
import { toWei } from './units.js';

// API field → input name (per action kind where names collide; the trigger kinds' own are in
// their modules under triggers/).
const FIELD_INPUT = {
  'action_data.amount_wei': 'amount', 'action_data.token': 'erc20_token', 'action_data.amount': 'erc20_amount',
  'action_data.target': 'target', 'action_data.data': 'data', 'action_data.value_wei': 'value',
  'max_fee_per_run_wei': 'max_fee', 'max_runs': 'max_runs',
};

export function inputFor(form, field) {
  if (field === 'action_data.to') return form.elements[form.elements.action_type.value === '1' ? 'erc20_to' : 'to'];
  if (field.startsWith('trigger_data.') && allKinds().length) {
    const kind = kindOf(form.elements.trigger_type.value).module;
    const own = kind.inputFor(form, field);
    if (own) return own;
    const input = kind.inputs[field] || allKinds().map((k) => k.module.inputs[field]).find(Boolean);
    return input ? form.elements[input] : null;
  }
  const name = FIELD_INPUT[field];
  return name ? form.elements[name] : null;
}

const val = (form, name) => form.elements[name].value.trim();

// The create body for `user`, and the problems found before asking the API.
export function readForm(form, user) {
  const errors = [];
  const wei = (name, field, optional = false) => {
    const text = val(form, name);
    if (!text) { if (!optional) errors.push({ field, message: 'required' }); return undefined; }
    try { return toWei(text).toString(); } catch (e) { errors.push({ field, message: e.message }); return undefined; }
  };
  const int = (name, field, optional = false) => {
    const text = val(form, name);
    if (!text) { if (!optional) errors.push({ field, message: 'required' }); return undefined; }
    if (!/^\d+$/.test(text)) { errors.push({ field, message: 'must be a whole number' }); return undefined; }
    return Number.isSafeInteger(Number(text)) ? Number(text) : text;
  };
  const trigger = Number(form.elements.trigger_type.value);
  const action = Number(form.elements.action_type.value);
  let trigger_data;
  if (allKinds().length) trigger_data = kindOf(trigger).module.read(form, { val: (name) => val(form, name), int, errors });
  else errors.push({ field: 'trigger_type', message: 'the trigger kinds are not loaded yet (is the backend reachable?)' });
  let action_data;
  if (action === 0) action_data = { to: val(form, 'to'), amount_wei: wei('amount', 'action_data.amount_wei') };
  else if (action === 1) {
    action_data = { token: val(form, 'erc20_token'), to: val(form, 'erc20_to'), amount: int('erc20_amount', 'action_data.amount') };
  } else {
    action_data = { target: val(form, 'target'), data: val(form, 'data') || '0x', value_wei: wei('value', 'action_data.value_wei', true) ?? '0' };
  }
  const body = { user_address: user, trigger_type: trigger, trigger_data, action_type: action, action_data };
  const fee = wei('max_fee', 'max_fee_per_run_wei', true);
  if (fee !== undefined) body.max_fee_per_run_wei = fee;
  const runs = int('max_runs', 'max_runs', true);
  if (runs !== undefined) body.max_runs = runs;
  return { body, errors };
}

export function showKind(form) {
  const t = form.elements.trigger_type.value, a = form.elements.action_type.value;
  form.querySelectorAll('[data-when]').forEach((d) => { d.hidden = d.dataset.when !== t; });
  form.querySelectorAll('[data-do]').forEach((d) => { d.hidden = d.dataset.do !== a; });
}

// Put errors on their inputs and in the list; `all` shows errors of untouched fields too.
export function showErrors(form, list, errors, all) {
  form.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
  const shown = errors.filter((e) => {
    const input = inputFor(form, e.field);
    return all || !input || input.dataset.touched === '1';
  });
  list.replaceChildren(...shown.map((e) => {
    const input = inputFor(form, e.field);
    if (input) input.setAttribute('aria-invalid', 'true');
    const li = document.createElement('li');
    li.textContent = `${e.field}: ${e.message}`;
    return li;
  }));
  return shown.length;
}

// Full check: the browser's, then the API's. Returns {body, errors}.
export async function check(form, user) {
  const { body, errors } = readForm(form, user);
  if (!user) return { body, errors: [{ field: 'user_address', message: 'connect a wallet first' }, ...errors] };
  // The API checks everything else, also while some fields are still empty or malformed.
  const answer = await api.validate(body);
  const local = new Set(errors.map((e) => e.field));
  return { body, errors: [...errors, ...answer.errors.filter((e) => !local.has(e.field))] };
}
