// The trigger kinds of the create form and the workflow table: the API lists the kinds its
// registry lets users create (`/api/dashboard/trigger-kinds`), and each kind's form fragment is
// the module `triggers/<name>.js`, loaded by that name. A kind without a module is an error.

import { api } from './api.js';

const kinds = new Map(); // contract number → { name, code, label, module }

export async function loadKinds(form) {
  const listed = await api.triggerKinds();
  const loaded = await Promise.all(listed.map(async (k) => ({ ...k, module: (await import(`./triggers/${k.name}.js`)).default })));
  kinds.clear();
  for (const k of loaded) kinds.set(k.code, k);
  const select = form.elements.trigger_type;
  select.replaceChildren(...loaded.map((k) => Object.assign(document.createElement('option'), { value: String(k.code), textContent: k.label })));
  form.querySelector('#trigger-fields').replaceChildren(...loaded.map((k, i) => {
    const div = document.createElement('div');
    div.dataset.when = String(k.code);
    div.hidden = i !== 0;
    div.innerHTML = k.module.html;
    return div;
  }));
  return loaded;
}

export function kindOf(code) {
  const kind = kinds.get(Number(code));
  if (!kind) throw new Error(`unknown trigger kind ${code}`);
  return kind;
}

export function allKinds() { return [...kinds.values()]; }
