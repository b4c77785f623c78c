import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import STAGE_DEFAULTS from '../../../config/defaults.json';
import { loadConfig } from '../../../src/config';
import { MINIMAL_ENV } from '../support/minimal-env';

/** serverless.yml's `params.default`, as written: name -> value text (without its comment). */
const paramsAsWritten = (): Record<string, string> => {
  const text = readFileSync('serverless.yml', 'utf8');
  const block = text.slice(text.indexOf('params:\n  default:\n'), text.indexOf('\nprovider:'));
  return Object.fromEntries(
    [...block.matchAll(/^ {4}(\w+): (.*?)(?:\s+#.*)?$/gm)].map((match) => [match[1], match[2]] as [string, string]),
  );
};

/** docs/deploying.md's parameter table: name -> the default column, as written. */
const documentedDefaults = (): Record<string, string> =>
  Object.fromEntries(
    [...readFileSync('docs/deploying.md', 'utf8').matchAll(/^\| `(\w+)`\s*\| ([^|]*?)\s*\|/gm)].map(
      (match) => [match[1], match[2]] as [string, string],
    ),
  );

/** Defaults the table says in words rather than quote (each checked against the file below). */
const IN_WORDS: Record<string, string> = {
  keyDescription: '…',
  aliasScope: 'folder of `aliasName`',
  driftRemediateRules: 'rotation and alias rules',
};

/**
 * Issue 14, "each [setting] documented with its default, defaults kept in one place for
 * serverless.yml, config/stack.cjs and the code": config/defaults.json holds every stage
 * parameter's default; serverless.yml and src/config.ts read it, docs/deploying.md states it.
 */
describe('Stage parameter defaults: one place, config/defaults.json', () => {
  it("is where every one of serverless.yml's parameter defaults comes from, by its own name", () => {
    const written = paramsAsWritten();
    expect(Object.keys(written)).toEqual(Object.keys(STAGE_DEFAULTS));
    for (const [name, value] of Object.entries(written)) {
      expect(value, name).toBe(`\${file(./config/defaults.json):${name}}`);
    }
  });

  it('is the default the docs state for every parameter', () => {
    const documented = documentedDefaults();
    expect(Object.keys(documented).sort()).toEqual(Object.keys(STAGE_DEFAULTS).sort());
    for (const [name, value] of Object.entries(STAGE_DEFAULTS as Record<string, string>)) {
      const expected = IN_WORDS[name] ?? (value === '' ? 'empty' : `\`${value}\``);
      expect(documented[name], name).toBe(expected);
    }
    // What the words stand for.
    expect(STAGE_DEFAULTS.aliasScope).toBe('');
    expect(STAGE_DEFAULTS.driftRemediateRules.split(',')).toEqual([
      'rotation-enabled',
      'rotation-period',
      'declared-alias-missing',
      'declared-alias-elsewhere',
    ]);
  });

  it('is what the functions take when the stack sets nothing', () => {
    const config = loadConfig(MINIMAL_ENV);
    expect({
      rotationEventToleranceMinutes: config.rotationEventToleranceMs / 60_000,
      onDemandRotationLimit: config.onDemandRotationLimit,
      rotationWaitSeconds: config.rotationWaitMs / 1000,
      recentRotationMinutes: config.recentRotationMs / 60_000,
      driftMode: config.driftMode,
      driftRemediateRules: [...config.driftRemediateRules].join(','),
      auditRemediate: config.audit.remediateOnSchedule,
      auditMaxRotationPeriodDays: config.audit.maxRotationPeriodDays,
      auditMaxMaterialAgeDays: config.audit.maxMaterialAgeDays,
      auditConcurrency: config.audit.concurrency,
      auditQuotaShare: config.audit.quotaShare,
      auditRateLimits: config.audit.rateLimits,
      securityHubFindings: config.securityHubFindings,
      importExpiryWarningDays: config.audit.importExpiryWarningDays,
      rotationDueWarningDays: config.audit.rotationDueWarningDays,
      retireMode: config.retire.mode,
      retireDisableAfterDays: config.retire.disableAfterDays,
      retireDeleteAfterDays: config.retire.deleteAfterDays,
    }).toEqual({
      rotationEventToleranceMinutes: Number(STAGE_DEFAULTS.rotationEventToleranceMinutes),
      onDemandRotationLimit: Number(STAGE_DEFAULTS.onDemandRotationLimit),
      rotationWaitSeconds: Number(STAGE_DEFAULTS.rotationWaitSeconds),
      recentRotationMinutes: Number(STAGE_DEFAULTS.recentRotationMinutes),
      driftMode: STAGE_DEFAULTS.driftMode,
      driftRemediateRules: STAGE_DEFAULTS.driftRemediateRules,
      auditRemediate: STAGE_DEFAULTS.auditRemediate === 'true',
      auditMaxRotationPeriodDays: Number(STAGE_DEFAULTS.auditMaxRotationPeriodDays),
      auditMaxMaterialAgeDays: Number(STAGE_DEFAULTS.auditMaxMaterialAgeDays),
      auditConcurrency: Number(STAGE_DEFAULTS.auditConcurrency),
      auditQuotaShare: Number(STAGE_DEFAULTS.auditQuotaShare),
      auditRateLimits: {},
      securityHubFindings: STAGE_DEFAULTS.securityHubFindings === 'true',
      importExpiryWarningDays: Number(STAGE_DEFAULTS.importExpiryWarningDays),
      rotationDueWarningDays: Number(STAGE_DEFAULTS.rotationDueWarningDays),
      retireMode: STAGE_DEFAULTS.retireMode,
      retireDisableAfterDays: Number(STAGE_DEFAULTS.retireDisableAfterDays),
      retireDeleteAfterDays: Number(STAGE_DEFAULTS.retireDeleteAfterDays),
    });
  });
});
