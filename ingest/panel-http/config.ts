/**
 * Control-panel HTTP intake configuration (`panel:` in the config file). The control panel POSTs its
 * change events here; each panel installation (client) has its own API key.
 */
import { Type, type Static } from '@sinclair/typebox'

export const PanelClientSchema = Type.Object({
  /** Public key id: the part before the dot in the client's key `al_<id>.<secret>`. Example: `panelprod1`. */
  id: Type.String({ pattern: '^[a-z0-9]{4,32}$' }),
  /**
   * scrypt hash of the whole key as printed by `auditline apikey create` (`scrypt$<N>$<r>$<p>$<salt>$<hash>`);
   * the key itself is never stored. Example: `scrypt$16384$8$1$dGVzdHNhbHQ=$…`.
   */
  hash: Type.String({ pattern: '^scrypt\\$\\d+\\$\\d+\\$\\d+\\$[A-Za-z0-9+/=]+\\$[A-Za-z0-9+/=]+$' }),
  /** Human name of the client for logs and docs. Example: `control panel (prod, fra1)`. */
  name: Type.String({ minLength: 1, maxLength: 256 }),
  /**
   * When set, the client may post events of this customer (tenant) only: a reseller panel that must not
   * write into other customers' audit trail. Example: `cust-4711`.
   */
  tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 128 }))
}, { additionalProperties: false })

export type PanelClient = Static<typeof PanelClientSchema>

export const PanelConfigSchema = Type.Object({
  /** Address to listen on. Example: `127.0.0.1` (put a TLS-terminating proxy in front for remote panels). */
  host: Type.String({ default: '127.0.0.1' }),
  /** TCP port; 0 picks a free one. Example: `8081`. */
  port: Type.Integer({ default: 8081, minimum: 0, maximum: 65535 }),
  /** Panel installations allowed to post; the intake starts with `auditline run` only when this is non-empty. */
  clients: Type.Array(PanelClientSchema, { default: [] }),
  /**
   * Eingabekontrolle: a change made by staff must name the ticket that ordered it. `true` (default) answers
   * 422 to a staff change without `ticket_id`; `false` accepts it and flags it
   * (`auditline.flags` and `tags`: `staff_change_without_ticket`) so that it can be found and followed up.
   */
  requireTicketForStaff: Type.Boolean({ default: true }),
  /** Most events one `POST /v1/panel-events/batch` may carry. Example: `1000`. */
  maxBatch: Type.Integer({ default: 1000, minimum: 1, maximum: 100000 }),
  /** Largest request body in bytes (a larger one is answered 413). Example: `2097152` (2 MiB). */
  maxBodyBytes: Type.Integer({ default: 2 * 1024 * 1024, minimum: 1024 }),
  /**
   * Directory of the per-client sequence journals (`<clientId>.seq.jsonl`): they keep each client
   * stream's sequence numbers gap-free across restarts and retries. Back it up with the host; losing it
   * restarts numbering at 0 (visible as a new stream epoch, never as silent loss). Example: `/var/lib/auditline/panel`.
   */
  stateDir: Type.String({ default: './var/panel', minLength: 1 }),
  /**
   * How many of a client's most recent event ids are remembered: a retry within this window gets the same
   * sequence number (and is checked to carry the same content); an older retry still gets the same
   * `event.id` (so the index does not duplicate it) but a new sequence number. Example: `100000`.
   */
  idempotencyWindow: Type.Integer({ default: 100000, minimum: 1 }),
  /**
   * Milliseconds to wait for Kafka's acknowledgement before answering 503 (retriable). The panel retries
   * with the same ids, so a late acknowledgement only leads to an overwrite, never to a duplicate. Example: `10000`.
   */
  ackTimeoutMs: Type.Integer({ default: 10000, minimum: 100 }),
  /**
   * Most events that may wait for Kafka's acknowledgement at once; beyond that a request is answered 503
   * at once, so that a slow or absent Kafka bounds the intake's memory instead of growing it. Example: `20000`.
   */
  maxPendingEvents: Type.Integer({ default: 20000, minimum: 1 })
}, { additionalProperties: false, default: {} })

export type PanelConfig = Static<typeof PanelConfigSchema>
