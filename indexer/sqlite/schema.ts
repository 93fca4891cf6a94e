/**
 * The embedded store's schema (#7): one SQLite file (WAL) holding what Elasticsearch holds in the distributed
 * mode — audit events, statistics documents, seal checkpoints — plus what Kafka holds there: dead letters,
 * the anonymized web records between the anonymizer and the statistics stage, and the stages' positions.
 *
 * Index names are the distributed mode's (`<prefix>-<class>-YYYY.MM.DD`): retention deletes "indices", verify
 * reads them, exports prove them, exactly as on Elasticsearch. The filter columns of `events` are copies of
 * document fields made at insert; `doc` is the document as indexed and the only thing read back and verified.
 * No visitor IP and no epoch key is ever written here: web access reaches this file only anonymized.
 */
export const SCHEMA_VERSION = 1

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- One row per "index" (events and statistics): its name, a uuid made at creation (retention deletes only the
-- index it planned), and what it holds.
CREATE TABLE IF NOT EXISTS indices (
  name TEXT PRIMARY KEY,
  uuid TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('events', 'stats')),
  created TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,      -- insertion order, never reused (the sealer's cursor)
  id TEXT NOT NULL UNIQUE,                    -- event.id (deterministic): a replay is ignored, never a duplicate
  idx TEXT NOT NULL,                          -- index name
  ts INTEGER NOT NULL,                        -- @timestamp, epoch ms
  class TEXT NOT NULL,                        -- auditline.class
  action TEXT,                                -- event.action
  outcome TEXT,                               -- event.outcome
  user_name TEXT,                             -- user.name
  host_name TEXT,                             -- host.name
  source_ip BLOB,                             -- source.ip as 16 bytes (IPv4 as ::ffff:a.b.c.d): CIDR = byte range
  ticket TEXT,                                -- panel.ticket_id
  customer TEXT,                              -- panel.customer
  session TEXT,                               -- ssh.session_id, ftp.session_id or db.connection_id
  stream TEXT,                                -- auditline.stream
  sequence INTEGER,                           -- event.sequence
  doc TEXT NOT NULL                           -- the document as indexed (JSON)
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts, id);
CREATE INDEX IF NOT EXISTS events_idx ON events (idx);
CREATE INDEX IF NOT EXISTS events_user ON events (user_name, ts);
CREATE INDEX IF NOT EXISTS events_host ON events (host_name, ts);
CREATE INDEX IF NOT EXISTS events_action ON events (action, ts);
CREATE INDEX IF NOT EXISTS events_class ON events (class, ts);
CREATE INDEX IF NOT EXISTS events_ip ON events (source_ip, ts, id);
CREATE INDEX IF NOT EXISTS events_ticket ON events (ticket);
CREATE INDEX IF NOT EXISTS events_customer ON events (customer, ts);
CREATE INDEX IF NOT EXISTS events_session ON events (session);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream, sequence);

-- event.category is an array: one row per value.
CREATE TABLE IF NOT EXISTS event_categories (
  category TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (category, seq)
) WITHOUT ROWID;

-- Free text (the fields the Elasticsearch store's multi_match searches), rowid = events.seq. Contentless:
-- the text is in events.doc already.
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(text, content='', contentless_delete=1, tokenize='unicode61');

CREATE TABLE IF NOT EXISTS stats (
  id TEXT PRIMARY KEY,                        -- statsDocumentId: a re-emitted bucket overwrites
  idx TEXT NOT NULL,
  site TEXT NOT NULL,
  granularity TEXT NOT NULL,
  ts INTEGER NOT NULL,                        -- period.start, epoch ms
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stats_site ON stats (site COLLATE NOCASE, granularity, ts);
CREATE INDEX IF NOT EXISTS stats_site_name ON stats (site);            -- distinct names in byte order (listSites)
CREATE INDEX IF NOT EXISTS stats_idx ON stats (idx);

CREATE TABLE IF NOT EXISTS seals (
  seq INTEGER PRIMARY KEY,                    -- checkpoint seq; doc id is checkpointDocId(seq)
  idx TEXT NOT NULL,
  from_ts TEXT NOT NULL,
  to_ts TEXT NOT NULL,
  doc TEXT NOT NULL                           -- the checkpoint as signed (JSON)
);
-- Which checkpoints hold an event id (evidence exports).
CREATE TABLE IF NOT EXISTS seal_ids (
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS deadletters (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL,
  stage TEXT NOT NULL,
  code TEXT NOT NULL,
  stream TEXT,
  sequence INTEGER,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletters_stream ON deadletters (stream, sequence);

-- Anonymized web access records (never raw ones) between the anonymizer and the statistics stage; the
-- statistics stage's position is in meta. id is the record's event.id (deterministic, from the line's position):
-- a batch written again after a crash adds nothing. Rows are deleted a margin below the position, so that the
-- ids of a re-sent batch are still there to be recognised.
CREATE TABLE IF NOT EXISTS anon_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  value TEXT NOT NULL
);
`
