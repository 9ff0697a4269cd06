// The INTERVAL trigger's part of the create form: every N seconds.

export default {
  html: '<label>Every (seconds) <input name="interval" inputmode="numeric" placeholder="3600"></label>',
  inputs: { 'trigger_data.interval': 'interval' },
  inputFor: () => undefined,
  read(form, { int }) {
    return { interval: int('interval', 'trigger_data.interval') };
  },
  text: (t) => `every ${t.interval} s`,
  nextDue: () => null,
};
