/**
 * CSV as RFC 4180 has it (docs/audit-reports.md): a header row, CRLF between records, a field
 * quoted when it holds a comma, a double quote, CR or LF, and a double quote inside doubled.
 * Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, a tab or CR as a formula: such a
 * value is written with a single quote before it, so that it is shown as text, never run.
 */

/** Characters a spreadsheet takes as the start of a formula. */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One value as a CSV field: defused if it could be a formula, quoted if it must be. */
export const csvField = (value: string): string => {
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

/** A header row and one row per record, in the order of `columns`; ends with CRLF. */
export const csvOf = <T>(columns: readonly { name: string; value: (record: T) => string }[], records: readonly T[]) =>
  [columns.map((column) => column.name), ...records.map((record) => columns.map((column) => column.value(record)))]
    .map((row) => `${row.map(csvField).join(',')}\r\n`)
    .join('');
