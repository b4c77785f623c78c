import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The repository explains itself: code comments point into `docs/` (as `docs/<page>.md#<anchor>`),
 * never at documents kept outside the repository, and every pointer lands on a page and a heading
 * that exist.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const THIS_FILE = relative(ROOT, fileURLToPath(import.meta.url))
  .split('\\')
  .join('/');

/** Where code lives (and docs/, which must not lean on outside documents either). */
const SCANNED_DIRS = ['src', 'handlers', 'scripts', 'tests', 'config', 'resources', 'docs'];
const SCANNED_FILES = ['serverless.yml'];

/** Documents that are not in the repository: nothing in it may send a reader there. */
const OUTSIDE_DOCUMENTS = /\b(?:DESIGN|STYLE)\.md\b|kms-reference/;

const filesUnder = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : filesUnder(path);
    return entry.isFile() ? [path] : [];
  });

const scannedFiles = (): string[] =>
  [...SCANNED_DIRS.flatMap(filesUnder), ...SCANNED_FILES.filter((file) => existsSync(join(ROOT, file)))]
    .filter((file) => file !== THIS_FILE)
    .sort();

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen. */
const slugOf = (heading: string): string =>
  heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

/** The anchors of a Markdown page's headings, outside fenced code; a repeated heading gets `-1`, `-2`, ... as on GitHub. */
const anchorsOf = (markdown: string): Set<string> => {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1];
    if (marker) {
      if (fence === undefined) fence = marker;
      else if (fence === marker) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = slugOf(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
};

interface Pointer {
  file: string;
  line: number;
  page: string;
  anchor?: string;
}

/** `docs/<page>.md` and `docs/<page>.md#<anchor>`, not inside a longer path or a URL. */
const POINTER = /(?<![\w./-])docs\/([\w.-]+\.md)(?:#([\w-]+))?/g;

const pointersIn = (file: string): Pointer[] =>
  read(file)
    .split('\n')
    .flatMap((text, index) =>
      [...text.matchAll(POINTER)].map((match) => ({
        file,
        line: index + 1,
        page: match[1] as string,
        anchor: match[2],
      })),
    );

/** A link from one docs page to another (or to itself): `](page.md#anchor)`, `](page.md)`, `](#anchor)`. */
const LINK = /\]\(((?:[\w.-]+\.md)?)(?:#([\w-]+))?\)/g;

const whereIs = (pointer: Pointer): string =>
  `${pointer.file}:${pointer.line}: docs/${pointer.page}${pointer.anchor ? `#${pointer.anchor}` : ''}`;

describe('Repository: documentation the code relies on', () => {
  describe('Function: slugOf', () => {
    it.each([
      ['Events', 'events'],
      ['Rotation by key type', 'rotation-by-key-type'],
      ['KMS CMK Rotation', 'kms-cmk-rotation'],
      ['On-demand rotation quota', 'on-demand-rotation-quota'],
      ['Declared state: tags on the key', 'declared-state-tags-on-the-key'],
      ['Rotating by hand: `rotate`', 'rotating-by-hand-rotate'],
      [
        'Authorization, tested (`tests/integration/authorization.int.test.ts`)',
        'authorization-tested-testsintegrationauthorizationinttestts',
      ],
    ])('gives "%s" the anchor GitHub gives it', (heading, anchor) => {
      expect(slugOf(heading)).toBe(anchor);
    });

    it('numbers a repeated heading, and ignores headings in fenced code', () => {
      // Act
      const anchors = anchorsOf('# Page\n## Sources\n```\n## Not a heading\n```\n## Sources\n');

      // Assess
      expect([...anchors]).toEqual(['page', 'sources', 'sources-1']);
    });
  });

  describe('no pointer outside the repository', () => {
    const files = scannedFiles();

    it('scans the code, the scripts, the tests, the config and docs/', () => {
      expect(files).toEqual(expect.arrayContaining(['src/domain/errors.ts', 'serverless.yml', 'config/stack.cjs']));
      expect(files).not.toContain(THIS_FILE);
    });

    it('finds no mention of DESIGN.md, STYLE.md or kms-reference.md', () => {
      // Act
      const offending = files.flatMap((file) =>
        read(file)
          .split('\n')
          .flatMap((text, index) => (OUTSIDE_DOCUMENTS.test(text) ? [`${file}:${index + 1}: ${text.trim()}`] : [])),
      );

      // Assess: say it in the comment, or put it in docs/ and point there (docs/README.md).
      expect(offending).toEqual([]);
    });
  });

  describe('every pointer into docs/ resolves', () => {
    const pointers = scannedFiles()
      .filter((file) => !file.startsWith('docs/'))
      .flatMap(pointersIn);

    it('finds the pointers (a pattern that matched nothing would prove nothing)', () => {
      expect(pointers.length).toBeGreaterThan(0);
      expect(pointers.some((pointer) => pointer.anchor !== undefined)).toBe(true);
    });

    it('names a page that exists in docs/', () => {
      // Act
      const missing = pointers.filter((pointer) => !existsSync(join(ROOT, 'docs', pointer.page)));

      // Assess
      expect(missing.map(whereIs)).toEqual([]);
    });

    it('names a heading of that page by its GitHub anchor', () => {
      // Act
      const broken = pointers.filter(
        (pointer) =>
          pointer.anchor !== undefined &&
          existsSync(join(ROOT, 'docs', pointer.page)) &&
          !anchorsOf(read(`docs/${pointer.page}`)).has(pointer.anchor),
      );

      // Assess
      expect(broken.map(whereIs)).toEqual([]);
    });

    it('links between docs/ pages land on a page and a heading that exist', () => {
      // Prepare
      const pages = readdirSync(join(ROOT, 'docs')).filter(
        (name) => name.endsWith('.md') && statSync(join(ROOT, 'docs', name)).isFile(),
      );

      // Act
      const broken = pages.flatMap((page) =>
        [...read(`docs/${page}`).matchAll(LINK)].flatMap((match) => {
          const target = match[1] || page;
          const anchor = match[2];
          if (!existsSync(join(ROOT, 'docs', target))) return [`docs/${page}: ${target} does not exist`];
          if (anchor !== undefined && !anchorsOf(read(`docs/${target}`)).has(anchor)) {
            return [`docs/${page}: ${target}#${anchor} names no heading`];
          }
          return [];
        }),
      );

      // Assess
      expect(broken).toEqual([]);
    });
  });
});
