// The CRON trigger's part of the create form: a 5-field cron spec in UTC (checked on-chain).

export default {
  html: `<label>Cron (UTC) <input name="cron_spec" placeholder="0 9 * * 1-5" autocomplete="off"></label>
    <small>minute hour day month weekday (0 = Sunday), UTC — e.g. <code>0 9 * * 1-5</code>: weekdays at 09:00</small>`,
  inputs: { 'trigger_data.spec': 'cron_spec' },
  inputFor: () => undefined,
  read(form, { val, errors }) {
    const spec = val('cron_spec');
    if (!spec) errors.push({ field: 'trigger_data.spec', message: 'required, e.g. 0 9 * * 1-5' });
    return { spec: spec || undefined };
  },
  text: (t) => `cron ${t.spec} (UTC)`,
  // The table's next due time comes from the API (the next tick); past it, the run is on its way.
  nextDue: (w, eligible) => (eligible ? 'at the next tick' : null),
};
