/**
 * Parses Loki's JSON answers as they arrive.
 *
 * A page of a log query is megabytes of JSON. Read whole, it exists as chunks,
 * then as one buffer, then as one string, before JSON.parse builds the entries:
 * three copies of large objects that V8 frees only in a full collection, so an
 * export's memory grew with the size of its pages (288 MB peak for 1M lines).
 * Here the entries of each stream (`data.result[i].values`) are parsed one by
 * one as soon as their text is complete, and only the rest of the answer
 * (status, stream labels, stats: small) is kept as text and parsed at the end.
 * The result is what JSON.parse of the whole answer would give.
 */

const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d

/** The rest of a JSON string, closing quote included. */
const STRING_REST = /[^"\\]*(?:\\[\s\S][^"\\]*)*"/y
/** The rest of the text inside a string that does not close in it; group 1 is a final lone backslash. */
const STRING_TAIL = /[^"\\]*(?:\\[\s\S][^"\\]*)*(\\?)$/y

/** Keys longer than this are never one of the keys on the path to the entries. */
const KEY_MAX = 16

export class AnswerParser {
  /** The answer's text outside the entries arrays, which are left empty. */
  private readonly skeleton: string[] = []
  /** Each entries array parsed so far, with the element of data.result it belongs to. */
  private readonly entryLists: { element: number; entries: unknown[] }[] = []
  /** Open containers, innermost last: OPEN_BRACE or OPEN_BRACKET. */
  private readonly stack: number[] = []
  /** The key being read in each open object (undefined in arrays). */
  private readonly keys: (string | undefined)[] = []
  /** Objects opened so far directly in data.result. */
  private resultElements = 0
  /** The entries array being read, if any. */
  private entries: unknown[] | undefined
  /**
   * Text of the entry that the last chunks ended in, already scanned, as the
   * pieces it arrived in: joined once when the entry ends, so an entry of any
   * size costs its length, not its length times the chunks it spans.
   */
  private readonly pending: string[] = []
  private inString = false
  /** The last chunk ended right after a backslash inside a string. */
  private escaped = false
  /** The text so far of a string that may be a key on the path; undefined when it cannot be. */
  private stringHead: string | undefined
  private lastString: string | undefined

  write(text: string): void {
    if (text === '') return
    const end = text.length
    // Inside an entries array: where the current entry's text in this chunk
    // starts. Elsewhere: where the skeleton text not yet kept starts.
    let start = 0
    let i = 0
    while (i < end) {
      if (this.inString) {
        i = this.skipString(text, i)
        continue
      }
      const code = text.charCodeAt(i)
      if (code === QUOTE) {
        this.inString = true
        this.stringHead = this.stack.length <= 4 ? '' : undefined
      } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
        if (code === OPEN_BRACE && this.atPath(3, 'data', 'result')) this.resultElements++
        if (code === OPEN_BRACKET && this.atPath(4, 'data', 'result', undefined, 'values')) {
          this.skeleton.push(text.slice(start, i + 1))
          start = i + 1
          this.entries = []
          this.entryLists.push({ element: this.resultElements - 1, entries: this.entries })
        }
        this.stack.push(code)
        this.keys.push(undefined)
      } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
        if (this.entries && this.stack.length === 5) {
          this.addEntry(text.slice(start, i), true)
          this.entries = undefined
          start = i
        }
        this.stack.pop()
        this.keys.pop()
      } else if (code === COMMA) {
        if (this.entries && this.stack.length === 5) {
          this.addEntry(text.slice(start, i), false)
          start = i + 1
        }
      } else if (code === COLON && this.stack.length <= 4) {
        this.keys[this.keys.length - 1] = this.lastString
      }
      i++
    }
    if (this.entries) this.pending.push(text.slice(start))
    else this.skeleton.push(text.slice(start))
  }

  /** The parsed answer. Throws SyntaxError when the text is not one complete JSON value. */
  end(): unknown {
    if (this.stack.length > 0 || this.inString) throw new SyntaxError('the answer is cut off')
    const answer = JSON.parse(this.skeleton.join('')) as { data?: { result?: unknown } } | null
    // Each list came from data.result, so it is there unless a key was repeated.
    const result = answer?.data?.result
    for (const { element, entries } of this.entryLists) {
      const stream = Array.isArray(result) ? (result[element] as Record<string, unknown> | null) : undefined
      if (typeof stream === 'object' && stream !== null) stream.values = entries
    }
    return answer
  }

  /** Scans a string from `from` (inside it) to past its closing quote, or to the end of the text. */
  private skipString(text: string, from: number): number {
    let i = from
    if (this.escaped) {
      this.escaped = false
      i++
    }
    STRING_REST.lastIndex = i
    const closed = STRING_REST.test(text)
    let stop: number
    if (closed) {
      stop = STRING_REST.lastIndex - 1
    } else {
      stop = text.length
      STRING_TAIL.lastIndex = i
      this.escaped = STRING_TAIL.exec(text)?.[1] === '\\'
    }
    if (this.stringHead !== undefined) {
      this.stringHead += text.slice(from, stop)
      if (this.stringHead.length > KEY_MAX) this.stringHead = undefined
    }
    if (!closed) return text.length
    this.inString = false
    this.lastString = this.stringHead
    return stop + 1
  }

  /** Whether the open containers are exactly the objects and arrays under these keys (undefined: an array). */
  private atPath(depth: number, ...path: (string | undefined)[]): boolean {
    if (this.stack.length !== depth) return false
    for (let level = 0; level < depth; level++) {
      const key = path[level]
      if (key === undefined ? this.stack[level] !== OPEN_BRACKET : this.stack[level] !== OPEN_BRACE || this.keys[level] !== key) return false
    }
    return true
  }

  private addEntry(last: string, closing: boolean): void {
    this.pending.push(last)
    const entry = this.pending.join('').trim()
    this.pending.length = 0
    if (entry === '') {
      // Only `[]` has nothing between its brackets.
      if (closing && this.entries!.length === 0) return
      throw new SyntaxError('an empty entry')
    }
    this.entries!.push(JSON.parse(entry))
  }
}
