/**
 * The web access source: nginx/apache access logs → raw records on the RESTRICTED topic (see parse.ts).
 */
export { WEB_ACCESS_FORMATS, createWebAccessToMessage, parseAccessLine, partitionKey, compileWebAccess, type WebAccessFormat, type WebAccessDraft } from './parse.ts'
export { WebAccessRecordSchema, assertWebAccessRecord, WEB_ACCESS_SCHEMA_VERSION, type WebAccessRecord } from './record.ts'
export type { WebAccessOptions } from './config.ts'
