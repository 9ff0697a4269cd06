// The TIME trigger's part of the create form: once, at a moment (or in N seconds).

export default {
  html: `<label>At (local time) <input name="at" type="datetime-local" step="1"></label>
    <label>or in seconds from now <input name="in_s" inputmode="numeric" placeholder="e.g. 10"></label>`,
  inputs: { 'trigger_data.at': 'at' },
  // The input an error on `field` belongs to (the seconds box when that is what was used).
  inputFor(form, field) {
    if (field === 'trigger_data.at' && !form.elements.at.value && form.elements.in_s.value) return form.elements.in_s;
    return undefined;
  },
  read(form, { val, int, errors }) {
    let at;
    if (val('at')) at = Math.floor(new Date(val('at')).getTime() / 1000);
    else if (val('in_s')) {
      const s = int('in_s', 'trigger_data.at');
      if (s !== undefined) at = Math.floor(Date.now() / 1000) + Number(s);
    } else errors.push({ field: 'trigger_data.at', message: 'pick a time, or seconds from now' });
    return { at };
  },
  text: (t) => `at ${new Date(t.at * 1000).toLocaleString()}`,
  nextDue: () => null,
};
