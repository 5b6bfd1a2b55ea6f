/**
 * Message templates of log lines, read by obs itself: a pino line's `msg`
 * (and its `err.type` / `err.message` where `err` is an object), with
 * numbers, hex and uuid-like ids and quoted values masked as `<_>`.
 *
 * Why obs's own: Loki's pattern ingester drops messages of fewer than four
 * tokens, and pino messages are often two or three words ("job done"), so on
 * such an app it forms no pattern at all. A template needs nothing of Loki
 * but the lines and LogQL, so "is this message new" can be asked of any Loki:
 * `templateQuery` counts the lines of one template with a line filter on its
 * longest literal text and an anchored regular expression on the parsed
 * fields, every piece of line text quoted (quoteLogQL), never spliced.
 */
import { quoteLogQL } from '../loki/logql.ts'

export const MASK = '<_>'

/** A template's fields: the message, and pino's err.type and err.message where the line had them. */
export interface Template {
  msg: string
  errType?: string
  errMessage?: string
}

// Order matters: quoted values and ids before plain numbers, so that a uuid is one mask, not five.
const MASKS: RegExp[] = [
  /"[^"]*"|'[^']*'|`[^`]*`/g,
  /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi,
  /\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b/gi,
  /\b0x[0-9a-f]+\b/gi,
  /[-+]?\d+(?:[.,:]\d+)*/g,
]

/** The text with every variable part masked, and runs of masks joined into one. */
export function maskText(text: string): string {
  let masked = text
  for (const pattern of MASKS) masked = masked.replace(pattern, MASK)
  return masked.replaceAll(new RegExp(`(?:${escapeRegex(MASK)}){2,}`, 'g'), MASK)
}

const MAX_TEXT = 300

/** A line's template: its JSON msg (message, log as fallbacks) and err fields, else the whole line; undefined when it has no text. */
export function lineTemplate(line: string): Template | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    parsed = undefined
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    const text = line.trim()
    return text === '' ? undefined : { msg: maskText(text.slice(0, MAX_TEXT)) }
  }
  const fields = parsed as Record<string, unknown>
  const message = [fields.msg, fields.message].find((v) => typeof v === 'string') as string | undefined
  const template: Template = { msg: maskText((message ?? '').slice(0, MAX_TEXT)) }
  const err = fields.err ?? fields.error
  if (err !== null && typeof err === 'object' && !Array.isArray(err)) {
    const { type, message: errMessage } = err as Record<string, unknown>
    if (typeof type === 'string') template.errType = maskText(type.slice(0, MAX_TEXT))
    if (typeof errMessage === 'string') template.errMessage = maskText(errMessage.slice(0, MAX_TEXT))
  }
  if (template.msg === '' && template.errType === undefined && template.errMessage === undefined) return undefined
  return template
}

/** One line of text for a template: `msg`, then ` [err.type: err.message]` where present. */
export function templateText(template: Template): string {
  const err = [template.errType, template.errMessage].filter((v) => v !== undefined).join(': ')
  return err === '' ? template.msg : `${template.msg} [${err}]`
}

function escapeRegex(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&')
}

/** An RE2 expression matching the whole of every text the template stands for (Loki anchors label matchers). */
export function templateRegex(text: string): string {
  return text
    .split(MASK)
    .map((part) => escapeRegex(part))
    .join('.+')
}

/** The longest literal run of the message, usable as a line filter: printable ASCII that JSON writes as is. */
function literal(template: Template): string | undefined {
  const parts = [template.msg, template.errType, template.errMessage]
    .filter((v): v is string => v !== undefined)
    .flatMap((v) => v.split(MASK))
    .map((part) => part.trim())
    .filter((part) => part.length >= 3 && /^[\x20-\x7e]+$/.test(part) && !/["\\/]/.test(part))
  return parts.sort((a, b) => b.length - a.length)[0]
}

/**
 * The log pipeline that keeps exactly the lines of this template (after a
 * stream selector): a line filter on its longest literal text for speed,
 * then the fields parsed and matched whole.
 */
export function templatePipeline(template: Template, json: boolean): string {
  const filter = literal(template)
  const stages = filter === undefined ? [] : [`|= ${quoteLogQL(filter)}`]
  if (!json) {
    stages.push(`|~ ${quoteLogQL(`^\\s*${templateRegex(template.msg)}\\s*$`)}`)
    return stages.join(' ')
  }
  const extract = ['obs_msg="msg"']
  const match = [`obs_msg=~${quoteLogQL(templateRegex(template.msg))}`]
  if (template.errType !== undefined) {
    extract.push('obs_err_type="err.type"')
    match.push(`obs_err_type=~${quoteLogQL(templateRegex(template.errType))}`)
  }
  if (template.errMessage !== undefined) {
    extract.push('obs_err_message="err.message"')
    match.push(`obs_err_message=~${quoteLogQL(templateRegex(template.errMessage))}`)
  }
  // An empty msg matches a missing one: Loki gives no label for an absent field, which =~"" accepts.
  if (template.msg === '') match[0] = 'obs_msg=""'
  stages.push(`| json ${extract.join(', ')}`, ...match.map((m) => `| ${m}`))
  return stages.join(' ')
}

export interface TemplateCount {
  template: Template
  text: string
  /** Whether its lines were JSON (the pipeline parses them) or plain text. */
  json: boolean
  count: number
  /** Stream labels of the group's lines (the service, for the deploy verdict). */
  key: string
  /** The newest line of the template, neutralised by whoever prints it. */
  example: string
}

/** Lines grouped by (key, template), most frequent first. */
export function groupTemplates(lines: { key: string; line: string }[]): TemplateCount[] {
  const groups = new Map<string, TemplateCount>()
  for (const { key, line } of lines) {
    const template = lineTemplate(line)
    if (template === undefined) continue
    const text = templateText(template)
    const id = `${key}\u0000${text}`
    const group = groups.get(id)
    if (group === undefined) {
      const json = line.trimStart().startsWith('{')
      groups.set(id, { template, text, json, count: 1, key, example: line })
    } else {
      group.count++
      group.example = line
    }
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || (a.text < b.text ? -1 : 1))
}
