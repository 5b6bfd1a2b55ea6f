// cli-table3 measures a cell by its display width (escape sequences left out,
// wide characters counted twice); renderTable fits columns by the same measure.
declare module 'cli-table3/src/utils.js' {
  const utils: { strlen(text: string): number }
  export default utils
}
