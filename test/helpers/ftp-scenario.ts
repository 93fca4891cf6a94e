/**
 * The FTP actions the tests perform against each server: every event kind the TOM asks for, from an
 * IPv4 and an IPv6 client, with failures (bad password, deleting a missing file). Used to capture the
 * fixtures (test/fixtures/ftp/) and by the integration test.
 */
import { FtpClient } from './ftp-client.ts'
import { FTP_PASSWORD, FTP_USER, type RunningFtp } from './ftp-servers.ts'

export interface ScenarioNames {
  /** A tag that makes file names unique per run (so a test can find its own events). */
  tag: string
}

/** What the scenario did, for assertions. */
export interface ScenarioResult {
  v4: { upload: string, renamed: string, dir: string }
  v6: { upload: string, dir: string }
}

async function must (what: string, p: Promise<{ code: number, text: string }>, ...codes: number[]): Promise<void> {
  const r = await p
  if (!codes.includes(r.code)) throw new Error(`${what}: unexpected reply ${r.code} ${r.text}`)
}

export async function runScenario (srv: RunningFtp, tag: string): Promise<ScenarioResult> {
  // A failed login (IPv4), then a good one.
  const bad = await FtpClient.connect(srv.v4.host, srv.v4.port)
  await must('bad login', bad.login(FTP_USER, 'wrong-password'), 530)
  await bad.quit()

  const up = `up-${tag}.txt`
  const renamed = `renamed-${tag}.txt`
  const dir = `dir-${tag}`
  const c = await FtpClient.connect(srv.v4.host, srv.v4.port)
  await must('login v4', c.login(FTP_USER, FTP_PASSWORD), 230)
  await c.binary()
  await must('upload', c.upload(up, `hello ${tag}\n`), 226)
  const got = await c.download(up)
  if (got.reply.code !== 226) throw new Error(`download: ${got.reply.code} ${got.reply.text}`)
  await must('rename', c.rename(up, renamed), 250)
  await must('chmod', c.chmod('600', renamed), 200)
  await must('mkdir', c.mkdir(dir), 257)
  await must('rmdir', c.rmdir(dir), 250)
  await must('delete', c.delete(renamed), 250)
  await must('delete missing', c.delete(`missing-${tag}.txt`), 550)
  await c.quit()

  // IPv6: failed login, good login, upload, download, mkdir, delete.
  const bad6 = await FtpClient.connect(srv.v6.host, srv.v6.port)
  await must('bad login v6', bad6.login(FTP_USER, 'wrong-password-6'), 530)
  await bad6.quit()
  const up6 = `up6-${tag}.bin`
  const dir6 = `dir6-${tag}`
  const c6 = await FtpClient.connect(srv.v6.host, srv.v6.port)
  await must('login v6', c6.login(FTP_USER, FTP_PASSWORD), 230)
  await c6.binary()
  await must('upload v6', c6.upload(up6, Buffer.alloc(4096, 7)), 226)
  const got6 = await c6.download(up6)
  if (got6.reply.code !== 226) throw new Error(`download v6: ${got6.reply.code} ${got6.reply.text}`)
  await must('rename v6', c6.rename(up6, `renamed6-${tag}.bin`), 250)
  await must('mkdir v6', c6.mkdir(dir6), 257)
  await must('rmdir v6', c6.rmdir(dir6), 250)
  await must('delete v6', c6.delete(`renamed6-${tag}.bin`), 250)
  await c6.quit()
  return { v4: { upload: up, renamed, dir }, v6: { upload: up6, dir: dir6 } }
}
