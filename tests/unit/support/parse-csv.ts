/**
 * A strict RFC 4180 reader for the tests: quoted fields (doubled quotes inside), CRLF between
 * records, and nothing else. Throws on anything a conforming writer would not produce.
 */
export const parseCsv = (text: string): string[][] => {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let at = 0;
  while (at < text.length) {
    if (text[at] === '"') {
      at += 1;
      for (;;) {
        const quote = text.indexOf('"', at);
        if (quote < 0) throw new Error('unterminated quoted field');
        field += text.slice(at, quote);
        at = quote + 1;
        if (text[at] === '"') {
          field += '"';
          at += 1;
        } else break;
      }
    } else {
      const end = text.slice(at).search(/[,\r\n"]/);
      const stop = end < 0 ? text.length : at + end;
      if (text[stop] === '"') throw new Error(`a quote inside an unquoted field at ${stop}`);
      field += text.slice(at, stop);
      at = stop;
    }
    if (text[at] === ',') {
      row.push(field);
      field = '';
      at += 1;
    } else if (text.startsWith('\r\n', at)) {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      at += 2;
    } else if (at < text.length) {
      throw new Error(`unexpected ${JSON.stringify(text[at])} at ${at}`);
    }
  }
  if (field !== '' || row.length > 0) throw new Error('the last record does not end with CRLF');
  return rows;
};

/** Rows as objects keyed by the header row. */
export const csvRecords = (text: string): Record<string, string>[] => {
  const [header = [], ...rows] = parseCsv(text);
  return rows.map((row) => {
    if (row.length !== header.length) throw new Error(`a row of ${row.length} fields under ${header.length} columns`);
    return Object.fromEntries(header.map((name, index) => [name, row[index] as string]));
  });
};
