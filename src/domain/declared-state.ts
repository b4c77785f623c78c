import type { Tags } from './model';

/** One prefix for every tag the service reads or writes (docs/architecture.md#declared-state). */
export const TAG_PREFIX = 'kms-rotation:';

export const TAGS = {
  managed: `${TAG_PREFIX}managed`,
  aliases: `${TAG_PREFIX}aliases`,
  periodDays: `${TAG_PREFIX}period-days`,
} as const;

export const ROTATION_PERIOD_RANGE = { min: 90, max: 2560 } as const;

const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

/** The desired state of a key, read from its tags. */
export interface DeclaredState {
  managed: boolean;
  aliases: string[];
  periodDays?: number;
  /** Tag values that could not be understood; reported, never guessed at. */
  problems: string[];
}

export const readDeclaredState = (tags: Tags): DeclaredState => {
  const problems: string[] = [];
  const managed = tags[TAGS.managed] === 'true';

  const aliases: string[] = [];
  for (const name of (tags[TAGS.aliases] ?? '').split(/\s+/).filter(Boolean)) {
    if (ALIAS_NAME.test(name) && !name.startsWith('alias/aws/')) aliases.push(name);
    else problems.push(`tag ${TAGS.aliases} names "${name.slice(0, 64)}", which is not a customer alias name`);
  }

  let periodDays: number | undefined;
  const rawPeriod = tags[TAGS.periodDays];
  if (rawPeriod !== undefined) {
    // Digits only: Number() would also read "1e3", "0x16d" or "365.0" as a whole number of days.
    const value = /^\d+$/.test(rawPeriod.trim()) ? Number(rawPeriod) : Number.NaN;
    if (value >= ROTATION_PERIOD_RANGE.min && value <= ROTATION_PERIOD_RANGE.max) {
      periodDays = value;
    } else {
      problems.push(
        `tag ${TAGS.periodDays} is "${rawPeriod.slice(0, 16)}", not a whole number of days in ${ROTATION_PERIOD_RANGE.min}..${ROTATION_PERIOD_RANGE.max}`,
      );
    }
  }

  return { managed, aliases: [...new Set(aliases)], periodDays, problems };
};
