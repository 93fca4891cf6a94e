/**
 * The seals index `<prefix>_seals`: one document per signed checkpoint (lib/seal.ts), id `cp-<seq>`.
 * The underscore keeps it out of `<prefix>-*`, the pattern of audit search and of retention: seals outlive
 * the indices they seal (a chain with holes proves nothing), and no search of events ever returns one.
 * Core field types only, like the event template; `dynamic: false` so that a stray field is kept but never
 * mapped. The leaf data (`hashes`) and the signature are read back, never searched: stored, not indexed.
 */
const kw = { type: 'keyword', ignore_above: 1024 } as const
const stored = { type: 'keyword', index: false, doc_values: false } as const
const long = { type: 'long' } as const
const date = { type: 'date' } as const

export function sealsIndexName (prefix: string): string {
  return `${prefix}_seals`
}

/** Document id of checkpoint `seq`: zero-padded, so ids sort like the chain. */
export function checkpointDocId (seq: number): string {
  return `cp-${String(seq).padStart(12, '0')}`
}

export const SEALS_MAPPINGS = {
  dynamic: false,
  properties: {
    v: long,
    seq: long,
    index: kw,
    from: date,
    to: date,
    // Searchable, so that an evidence export can find the checkpoint that holds an event.
    ids: kw,
    hashes: stored,
    timestamps: stored,
    size: long,
    root: kw,
    prev: kw,
    prev_statement: kw,
    key_id: kw,
    signed_at: date,
    root_sig: stored,
    sig: stored
  }
} as const

/**
 * No lifecycle policy, whatever `elasticsearch.ilm` says: the one seals index is written for the deployment's
 * whole life, and a warm phase would make it read-only (deploy/README.md, "Elasticsearch").
 */
export function sealsTemplate (prefix: string, replicas = 0): { name: string, body: Record<string, unknown> } {
  return {
    name: sealsIndexName(prefix),
    body: {
      index_patterns: [sealsIndexName(prefix)],
      priority: 100,
      template: {
        settings: { number_of_shards: 1, number_of_replicas: replicas },
        mappings: SEALS_MAPPINGS
      },
      _meta: { managed_by: 'auditline', schema: 1 }
    }
  }
}
