/**
 * Control-panel HTTP intake: the panel POSTs change events (who changed which object of which customer,
 * which fields, under which ticket); they become `panel` class audit events in `audit.panel.v1`.
 * See docs/sources/panel-http.md.
 */
export { validate, start, type PanelRunning } from './run.ts'
export { PanelConfigSchema, type PanelConfig, type PanelClient } from './config.ts'
export { buildPanelApp, type PanelAppDeps, type AcceptedEvent } from './app.ts'
export { checkBody, toEvent, fingerprint, PanelEventBodySchema, type PanelEventBody, type ItemError } from './transform.ts'
