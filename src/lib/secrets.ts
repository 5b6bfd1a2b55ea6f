/**
 * The one place that keeps configured secrets out of what obs prints or
 * writes. A Redactor is built once from the resolved settings (the headers
 * marked secret, the proxy URLs' credentials) and is used by the HTTP
 * client's messages and by the output layer: stdout, stderr and the files a
 * command writes (smoke's JUnit report). Anything a server sends back (a
 * /ready page, an error body, a label value, a log line) reaches the user
 * through those, so an echoed credential is masked whichever command or
 * code path printed it.
 */

/** Header names whose values are credentials. */
export const SECRET_HEADER = /auth|token|key|secret|cookie|password/i

/** What a secret is replaced with. */
export const MASK = '***'

/** Shorter values would mask ordinary words; a credential is never that short. */
const MIN_SECRET_LENGTH = 4

/**
 * Text holding URLs, fit to show: each URL's credentials (its userinfo, up to
 * the last "@" of the word, since a password may hold "/", "?" or "#" and
 * then the text is no URL at all) and its query or fragment become "…".
 */
export function maskUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)?\S*@/gi, (_, scheme: string | undefined) => `${scheme ?? ''}…@`).replace(/([a-z][a-z0-9+.-]*:\/\/[^\s?#]*)([?#])\S*/gi, '$1$2…')
}

export class Redactor {
  /** Every form to mask, longest first; none holds another. */
  private readonly forms: readonly string[]
  /** The same, as UTF-8, for bodies. */
  private readonly bytes: readonly Buffer[]

  constructor(secrets: Iterable<string>) {
    const forms = new Set<string>()
    for (const secret of secrets) if (secret.length >= MIN_SECRET_LENGTH) for (const form of encodings(secret)) forms.add(form)
    // A form that holds a shorter one is masked by masking that one ("Bearer tok" as "Bearer ***"): searched for, it
    // would only cost time on every write and every body.
    const kept: string[] = []
    for (const form of [...forms].sort((a, b) => a.length - b.length)) if (!kept.some((shorter) => form.includes(shorter))) kept.push(form)
    this.forms = kept.reverse()
    this.bytes = this.forms.map((form) => Buffer.from(form)).sort((a, b) => b.length - a.length)
  }

  /** The credentials among the headers and in the proxy URLs, in every form a server could echo. */
  static of(headers: Record<string, string>, proxyUrls: readonly (string | undefined)[] = []): Redactor {
    return new Redactor([...headerSecrets(headers), ...proxyUrls.flatMap((url) => (url ? urlSecrets(url) : []))])
  }

  /** Whether there is anything to mask: without secrets, output is passed on untouched. */
  get active(): boolean {
    return this.forms.length > 0
  }

  redact(text: string): string {
    // The common case, no secret in the text, costs one search per form and no copy.
    let clean = text
    for (const form of this.forms) if (clean.includes(form)) clean = clean.replaceAll(form, MASK)
    return clean
  }

  /**
   * A body as it arrives, masked: what a server sends back is masked before
   * anything parses, cuts or wraps it (a table cell cut to fit would leave
   * half a token that no later search finds). A secret split between two
   * chunks is found: the last bytes of each chunk wait for the next.
   */
  async *redactBytes(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const forms = this.bytes
    if (forms.length === 0) return yield* chunks
    const keep = forms[0].length - 1
    let carry: Buffer = Buffer.alloc(0)
    for await (const chunk of chunks) {
      let data = carry.length > 0 ? Buffer.concat([carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      for (const form of forms) if (data.includes(form)) data = replaceBytes(data, form)
      const cut = Math.max(0, data.length - keep)
      carry = data.subarray(cut)
      if (cut > 0) yield data.subarray(0, cut)
    }
    if (carry.length > 0) yield carry
  }
}

const MASK_BYTES = Buffer.from(MASK)

/** The bytes with every occurrence of `form` replaced by the mask. */
function replaceBytes(data: Buffer, form: Buffer): Buffer {
  const parts: Buffer[] = []
  let from = 0
  for (let at = data.indexOf(form); at >= 0; at = data.indexOf(form, from)) {
    parts.push(data.subarray(from, at), MASK_BYTES)
    from = at + form.length
  }
  parts.push(data.subarray(from))
  return Buffer.concat(parts)
}

/**
 * Masks every write to a stream (stdout, stderr) with the redactor. Each
 * write is masked whole: obs writes whole lines, entries, tables and
 * documents, so a secret is never split across two writes.
 */
export function redactWrites(stream: NodeJS.WritableStream, redactor: Redactor): void {
  if (!redactor.active || redacted.has(stream)) return
  redacted.add(stream)
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string') return write(redactor.redact(chunk), ...rest)
    if (chunk instanceof Uint8Array) {
      const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8')
      const clean = redactor.redact(text)
      return write(clean === text ? chunk : clean, ...rest)
    }
    return write(chunk, ...rest)
  }) as typeof stream.write
}

/** The streams whose writes are masked already: settings are resolved once per command, but a second time must not mask twice. */
const redacted = new WeakSet<NodeJS.WritableStream>()

/** A secret as it was given, and as a server or a renderer might write it back. */
function encodings(secret: string): string[] {
  const base64 = Buffer.from(secret).toString('base64')
  return [
    secret,
    base64,
    base64.replace(/=+$/, ''),
    encodeURIComponent(secret),
    encodeURIComponent(base64),
    // Inside a JSON string (--json, jsonl) and inside XML (the JUnit report).
    JSON.stringify(secret).slice(1, -1),
    secret.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`),
  ]
}

/** The values of headers marked secret: whole, the credentials after the scheme, and basic auth decoded. */
function headerSecrets(headers: Record<string, string>): string[] {
  const secrets: string[] = []
  for (const [name, value] of Object.entries(headers)) {
    if (!SECRET_HEADER.test(name)) continue
    secrets.push(value)
    const [scheme, credentials] = value.split(/\s+/, 2)
    if (!credentials) continue
    secrets.push(credentials)
    if (scheme.toLowerCase() === 'basic') secrets.push(...userPassword(Buffer.from(credentials, 'base64').toString('utf8')))
  }
  return secrets
}

/** "user:password" and the password: the user name alone is no secret. */
function userPassword(decoded: string): string[] {
  const colon = decoded.indexOf(':')
  return colon < 0 ? [decoded] : [decoded, decoded.slice(colon + 1)]
}

/** The credentials of a URL (a proxy's), as written and decoded, and as the Proxy-Authorization undici sends. */
function urlSecrets(text: string): string[] {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return []
  }
  // A token alone in the user part is sent as basic auth with an empty password.
  if (!url.password) return url.username ? [url.username, safeDecode(url.username), `${safeDecode(url.username)}:`] : []
  const user = safeDecode(url.username)
  const password = safeDecode(url.password)
  return [`${url.username}:${url.password}`, url.password, password, `${user}:${password}`]
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
