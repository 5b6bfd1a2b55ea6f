import { setFlagsFromString } from 'node:v8'

let tuned = false

/**
 * Sizes V8's heap for a command that streams page after page of garbage (an
 * export). With its default sizing V8 lets the young generation grow to 64 MB
 * a semi-space and the old one far past what is live, so a million-line
 * export peaked near 300 MB of RSS with 30 MB live; with these two it peaks
 * near 130 MB. The price is CPU in the collector (bench/RESULTS.md), and for
 * a short command more scavenges while its modules load (14 instead of 6 for
 * a 10-line query): so only commands that stream set it, when they start
 * streaming. V8 reads both each time the heap grows, so setting them late
 * takes effect.
 */
export function tuneHeapForStreaming(): void {
  if (tuned) return
  tuned = true
  setFlagsFromString('--semi-space-growth-factor=1')
  setFlagsFromString('--heap-growing-percent=50')
}
