import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvField, csvOf } from '../../../src/domain/csv';
import { parseCsv } from '../support/parse-csv';

describe('Function: csvField', () => {
  it('leaves a plain value as it is', () => {
    expect(csvField('rotation-enabled')).toBe('rotation-enabled');
    expect(csvField('')).toBe('');
  });

  it.each([
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['two\r\nlines', '"two\r\nlines"'],
  ])('quotes %j as RFC 4180 has it', (value, expected) => {
    expect(csvField(value)).toBe(expected);
  });

  it.each([
    ['=HYPERLINK("http://x")', '"\'=HYPERLINK(""http://x"")"'],
    ['+1+1', "'+1+1"],
    ['-1+1', "'-1+1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tcmd', "'\tcmd"],
    ['\rcmd', '"\'\rcmd"'],
  ])('defuses %j, which a spreadsheet would run as a formula, with a single quote', (value, expected) => {
    expect(csvField(value)).toBe(expected);
  });

  it('does not touch those characters anywhere but at the start', () => {
    expect(csvField('a=b+c-d@e')).toBe('a=b+c-d@e');
  });
});

describe('Function: csvOf', () => {
  const columns = [
    { name: 'id', value: (record: { id: string; note: string }) => record.id },
    { name: 'note', value: (record: { id: string; note: string }) => record.note },
  ];

  it('writes a header row and one row per record, each ending with CRLF', () => {
    expect(
      csvOf(columns, [
        { id: '1', note: 'plain' },
        { id: '2', note: 'a, "b"\nc' },
      ]),
    ).toBe('id,note\r\n1,plain\r\n2,"a, ""b""\nc"\r\n');
  });

  it('writes only the header for no records', () => {
    expect(csvOf(columns, [])).toBe('id,note\r\n');
  });

  it('reads back as written by an RFC 4180 reader, whatever the text, formulas defused', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ id: fc.string(), note: fc.string({ unit: 'binary' }) })), (records) => {
        const rows = parseCsv(csvOf(columns, records));
        const defused = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);
        expect(rows).toEqual([['id', 'note'], ...records.map((record) => [defused(record.id), defused(record.note)])]);
      }),
    );
  });
});
