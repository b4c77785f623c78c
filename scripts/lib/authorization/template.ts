/**
 * The policies a packaged template deploys, resolved to what they are in the deployed stack:
 * every role's inline policies and the `AWS::IAM::Policy` resources attached to it (only those
 * whose `Condition` holds), and the resource policies (KMS key policies, SNS topic policies, SQS
 * queue policies, Lambda permissions). Intrinsics are resolved with the stack's physical ids.
 * Pure: no AWS calls.
 */

export type PolicyDocument = { Version?: string; Statement: PolicyStatement[] | PolicyStatement };
export type PolicyStatement = Record<string, unknown>;

type Resource = { Type: string; Properties?: Record<string, unknown>; Condition?: string; [key: string]: unknown };
export interface CfnTemplate {
  Parameters?: Record<string, { Default?: unknown; [key: string]: unknown }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, Resource>;
  [key: string]: unknown;
}

export interface StackContext {
  accountId: string;
  region: string;
  partition: string;
  /** Logical id -> physical id, as the deployed stack reports them. */
  physicalIds: Record<string, string>;
  /** Stack parameter values that differ from the template's defaults. */
  parameters?: Record<string, string>;
}

export interface ResolvedRole {
  logicalId: string;
  name: string;
  arn: string;
  /** Inline policies, then attached `AWS::IAM::Policy` resources whose Condition holds, each named `<Logical>/<PolicyName>`. */
  policies: { name: string; policy: PolicyDocument }[];
  /** The role's trust policy (`AssumeRolePolicyDocument`): the resource policy of `sts:AssumeRole` on it. */
  trustPolicy?: PolicyDocument;
}

export interface ResolvedStack {
  accountId: string;
  region: string;
  partition: string;
  roles: Record<string, ResolvedRole>;
  /** Lambda function logical id -> its deployed name, ARN and its role's logical id. */
  functions: Record<string, { logicalId: string; name: string; arn: string; roleLogicalId: string }>;
  /** KMS keys the stack made: key id -> ARN and key policy. */
  keys: Record<
    string,
    { logicalId: string; keyId: string; arn: string; policy: PolicyDocument; tags: Record<string, string> }
  >;
  topics: Record<string, { logicalId: string; arn: string; kmsMasterKeyId?: string; policy?: PolicyDocument }>;
  queues: Record<string, { logicalId: string; arn: string; url: string; policy?: PolicyDocument }>;
  /** Bucket name -> its ARN and the policy its `AWS::S3::BucketPolicy` gives it. */
  buckets: Record<string, { logicalId: string; name: string; arn: string; policy?: PolicyDocument }>;
  /** Function ARN -> the resource policy its `AWS::Lambda::Permission` resources make. */
  lambdaPolicies: Record<string, PolicyDocument>;
  /** EventBridge rules: ARN, their targets' ARNs and dead-letter queue ARNs. */
  rules: { logicalId: string; arn: string; targets: string[]; deadLetterQueues: string[] }[];
  alarms: { logicalId: string; name: string; arn: string; actions: string[] }[];
  /** Lambda async on-failure destinations: function ARN -> destination ARN. */
  onFailureDestinations: Record<string, string>;
}

export class TemplateResolutionError extends Error {
  override name = 'TemplateResolutionError';
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The value `Ref` and `Fn::GetAtt` give for a resource, from its type and physical id. */
const attributeOf = (
  ctx: StackContext,
  template: CfnTemplate,
  logicalId: string,
  attribute: 'Ref' | string,
): string => {
  const resource = template.Resources[logicalId];
  if (!resource) throw new TemplateResolutionError(`No resource ${logicalId} in the template`);
  const { accountId: account, region, partition } = ctx;
  const properties = resource.Properties ?? {};
  const fallbackName = (property: string) => {
    const value = properties[property];
    return typeof value === 'string' ? value : undefined;
  };
  const physical =
    ctx.physicalIds[logicalId] ??
    (resource.Type === 'AWS::CloudWatch::Alarm' ? fallbackName('AlarmName') : undefined) ??
    (resource.Type === 'AWS::Events::EventBus' ? fallbackName('Name') : undefined) ??
    `${logicalId}-not-deployed`;
  const arn = (service: string, rest: string, withRegion = true) =>
    `arn:${partition}:${service}:${withRegion ? region : ''}:${account}:${rest}`;
  switch (resource.Type) {
    case 'AWS::IAM::Role': {
      const name = physical.startsWith('arn:') ? (physical.split('/').pop() as string) : physical;
      if (attribute === 'Ref' || attribute === 'RoleId') return name;
      if (attribute === 'Arn') return `arn:${partition}:iam::${account}:role/${name}`;
      break;
    }
    case 'AWS::KMS::Key': {
      const keyId = physical.split('/').pop() as string;
      if (attribute === 'Ref' || attribute === 'KeyId') return keyId;
      if (attribute === 'Arn') return arn('kms', `key/${keyId}`);
      break;
    }
    case 'AWS::SNS::Topic':
      if (attribute === 'Ref' || attribute === 'TopicArn') return physical;
      if (attribute === 'TopicName') return physical.split(':').pop() as string;
      break;
    case 'AWS::SQS::Queue': {
      const name = physical.split('/').pop() as string;
      if (attribute === 'Ref' || attribute === 'QueueUrl') return physical;
      if (attribute === 'QueueName') return name;
      if (attribute === 'Arn') return arn('sqs', name);
      break;
    }
    case 'AWS::Logs::LogGroup':
      if (attribute === 'Ref') return physical;
      if (attribute === 'Arn') return arn('logs', `log-group:${physical}:*`);
      break;
    case 'AWS::Lambda::Function': {
      const name = physical.startsWith('arn:') ? (physical.split(':').pop() as string) : physical;
      if (attribute === 'Ref') return name;
      if (attribute === 'Arn') return arn('lambda', `function:${name}`);
      break;
    }
    case 'AWS::Events::Rule': {
      const name = physical.startsWith('arn:') ? (physical.split('/').pop() as string) : physical;
      if (attribute === 'Ref') return name;
      // A rule on a bus other than the default one is rule/<bus name>/<rule name>.
      const bus = properties.EventBusName as { 'Fn::GetAtt'?: [string, string]; Ref?: string } | string | undefined;
      const busName =
        typeof bus === 'string'
          ? bus.split('/').pop()
          : bus?.['Fn::GetAtt']
            ? attributeOf(ctx, template, bus['Fn::GetAtt'][0], 'Name')
            : bus?.Ref
              ? attributeOf(ctx, template, bus.Ref, 'Ref')
              : undefined;
      const path = busName === undefined || busName === 'default' ? name : `${busName}/${name}`;
      if (attribute === 'Arn') return arn('events', `rule/${path}`);
      break;
    }
    case 'AWS::Events::EventBus': {
      const name = physical.startsWith('arn:') ? (physical.split('/').pop() as string) : physical;
      if (attribute === 'Ref' || attribute === 'Name') return name;
      if (attribute === 'Arn') return arn('events', `event-bus/${name}`);
      break;
    }
    case 'AWS::CloudWatch::Alarm':
      if (attribute === 'Ref') return physical;
      if (attribute === 'Arn') return arn('cloudwatch', `alarm:${physical}`);
      break;
    case 'AWS::S3::Bucket':
      if (attribute === 'Ref') return physical;
      if (attribute === 'Arn') return `arn:${partition}:s3:::${physical}`;
      if (attribute === 'DomainName') return `${physical}.s3.amazonaws.com`;
      break;
    case 'AWS::DynamoDB::Table': {
      const name = physical.startsWith('arn:') ? (physical.split('/').pop() as string) : physical;
      if (attribute === 'Ref') return name;
      if (attribute === 'Arn') return arn('dynamodb', `table/${name}`);
      break;
    }
    default:
      if (attribute === 'Ref') return physical;
  }
  throw new TemplateResolutionError(`Cannot resolve ${logicalId}.${attribute} (${resource.Type})`);
};

const pseudo = (ctx: StackContext, name: string): string | undefined =>
  ({
    'AWS::Partition': ctx.partition,
    'AWS::Region': ctx.region,
    'AWS::AccountId': ctx.accountId,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'stack',
    'AWS::NoValue': undefined,
  })[name];

/** A resolver of intrinsic functions for one stack. */
export const intrinsicResolver = (template: CfnTemplate, ctx: StackContext) => {
  const parameter = (name: string): string | undefined => {
    if (ctx.parameters?.[name] !== undefined) return ctx.parameters[name];
    const declared = template.Parameters?.[name];
    if (!declared) return undefined;
    return declared.Default === undefined ? undefined : String(declared.Default);
  };

  const ref = (name: string): unknown => {
    if (name.startsWith('AWS::')) return pseudo(ctx, name);
    if (template.Parameters?.[name]) {
      const value = parameter(name);
      if (value === undefined) throw new TemplateResolutionError(`Parameter ${name} has no value`);
      // A CommaDelimitedList parameter is a list where it is referenced (CloudFormation's parameter types).
      return template.Parameters[name]?.Type === 'CommaDelimitedList' ? value.split(',') : value;
    }
    return attributeOf(ctx, template, name, 'Ref');
  };

  const conditionCache = new Map<string, boolean>();
  const condition = (name: string): boolean => {
    const cached = conditionCache.get(name);
    if (cached !== undefined) return cached;
    const body = template.Conditions?.[name];
    if (body === undefined) throw new TemplateResolutionError(`No condition ${name} in the template`);
    const value = Boolean(resolve(body));
    conditionCache.set(name, value);
    return value;
  };

  const sub = (text: string, variables: Record<string, unknown>): string =>
    text.replace(/\$\{([^}!]+)\}/g, (_whole, expression: string) => {
      const name = expression.trim();
      if (name in variables) return String(resolve(variables[name]));
      if (name.includes('.')) {
        const [logicalId, attribute] = name.split(/\.(.+)/) as [string, string];
        return attributeOf(ctx, template, logicalId, attribute);
      }
      return String(ref(name));
    });

  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve).filter((item) => item !== NO_VALUE);
    if (!isObject(value)) return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [name] = keys as [string];
      const argument = value[name];
      switch (name) {
        case 'Ref':
          return argument === 'AWS::NoValue' ? NO_VALUE : ref(String(argument));
        case 'Fn::GetAtt': {
          const [logicalId, attribute] = Array.isArray(argument)
            ? (argument as [string, string])
            : (String(argument).split(/\.(.+)/) as [string, string]);
          return attributeOf(ctx, template, logicalId, String(resolve(attribute)));
        }
        case 'Fn::Sub': {
          if (typeof argument === 'string') return sub(argument, {});
          const [text, variables] = argument as [string, Record<string, unknown>];
          return sub(text, variables ?? {});
        }
        case 'Fn::Join': {
          const [separator, items] = argument as [string, unknown[]];
          return (resolve(items) as unknown[]).map(String).join(separator);
        }
        case 'Fn::Select': {
          const [index, items] = argument as [unknown, unknown];
          return (resolve(items) as unknown[])[Number(resolve(index))];
        }
        case 'Fn::Split': {
          const [separator, text] = argument as [string, unknown];
          return String(resolve(text)).split(separator);
        }
        case 'Fn::If': {
          const [conditionName, whenTrue, whenFalse] = argument as [string, unknown, unknown];
          return resolve(condition(conditionName) ? whenTrue : whenFalse);
        }
        case 'Fn::Equals': {
          const [left, right] = argument as [unknown, unknown];
          return JSON.stringify(resolve(left)) === JSON.stringify(resolve(right));
        }
        case 'Fn::Not':
          return !resolve((argument as unknown[])[0]);
        case 'Fn::And':
          return (argument as unknown[]).every((item) => Boolean(resolve(item)));
        case 'Fn::Or':
          return (argument as unknown[]).some((item) => Boolean(resolve(item)));
        case 'Condition':
          return condition(String(argument));
        default:
          if (name.startsWith('Fn::')) throw new TemplateResolutionError(`Unsupported intrinsic ${name}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      const resolved = resolve(inner);
      if (resolved !== NO_VALUE) out[key] = resolved;
    }
    return out;
  };

  return { resolve, condition, ref };
};

const NO_VALUE = Symbol('AWS::NoValue');

const asPolicy = (value: unknown): PolicyDocument => {
  const parsed = typeof value === 'string' ? JSON.parse(value) : value;
  if (!isObject(parsed) || parsed.Statement === undefined) {
    throw new TemplateResolutionError(`Not a policy document: ${JSON.stringify(value).slice(0, 200)}`);
  }
  return parsed as PolicyDocument;
};

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/** Resolves every policy of the packaged template against the deployed stack. */
export const resolveStack = (template: CfnTemplate, ctx: StackContext): ResolvedStack => {
  const { resolve, condition } = intrinsicResolver(template, ctx);
  const present = Object.entries(template.Resources).filter(
    ([, resource]) => resource.Condition === undefined || condition(resource.Condition),
  );
  const props = (resource: Resource) => resolve(resource.Properties ?? {}) as Record<string, unknown>;
  const ofType = (type: string) => present.filter(([, resource]) => resource.Type === type);

  const out: ResolvedStack = {
    accountId: ctx.accountId,
    region: ctx.region,
    partition: ctx.partition,
    roles: {},
    functions: {},
    keys: {},
    topics: {},
    queues: {},
    buckets: {},
    lambdaPolicies: {},
    rules: [],
    alarms: [],
    onFailureDestinations: {},
  };

  for (const [logicalId, resource] of ofType('AWS::IAM::Role')) {
    const properties = props(resource);
    out.roles[logicalId] = {
      logicalId,
      name: attributeOf(ctx, template, logicalId, 'Ref'),
      arn: attributeOf(ctx, template, logicalId, 'Arn'),
      policies: asList(properties.Policies).map((entry) => {
        const { PolicyName, PolicyDocument } = entry as { PolicyName: string; PolicyDocument: unknown };
        return { name: `${logicalId}/${PolicyName}`, policy: asPolicy(PolicyDocument) };
      }),
      ...(properties.AssumeRolePolicyDocument !== undefined
        ? { trustPolicy: asPolicy(properties.AssumeRolePolicyDocument) }
        : {}),
    };
  }
  const roleByName = new Map(Object.values(out.roles).map((role) => [role.name, role]));
  for (const [logicalId, resource] of ofType('AWS::IAM::Policy')) {
    const properties = props(resource);
    for (const roleName of asList(properties.Roles)) {
      const role = roleByName.get(String(roleName));
      if (!role) throw new TemplateResolutionError(`${logicalId} attaches to unknown role ${String(roleName)}`);
      role.policies.push({
        name: `${logicalId}/${String(properties.PolicyName)}`,
        policy: asPolicy(properties.PolicyDocument),
      });
    }
  }

  for (const [logicalId, resource] of ofType('AWS::Lambda::Function')) {
    const roleValue = resource.Properties?.Role;
    const roleLogicalId =
      isObject(roleValue) && Array.isArray(roleValue['Fn::GetAtt']) ? String(roleValue['Fn::GetAtt'][0]) : undefined;
    if (!roleLogicalId || !out.roles[roleLogicalId]) {
      throw new TemplateResolutionError(`${logicalId}.Role is not Fn::GetAtt of a role of this template`);
    }
    out.functions[logicalId] = {
      logicalId,
      name: attributeOf(ctx, template, logicalId, 'Ref'),
      arn: attributeOf(ctx, template, logicalId, 'Arn'),
      roleLogicalId,
    };
  }

  for (const [logicalId, resource] of ofType('AWS::KMS::Key')) {
    const properties = props(resource);
    const keyId = attributeOf(ctx, template, logicalId, 'Ref');
    out.keys[keyId] = {
      logicalId,
      keyId,
      arn: attributeOf(ctx, template, logicalId, 'Arn'),
      // CloudFormation's default when KeyPolicy is left out: the account root, delegating to IAM.
      policy: properties.KeyPolicy === undefined ? defaultKeyPolicy(ctx) : asPolicy(properties.KeyPolicy),
      tags: Object.fromEntries(
        (asList(properties.Tags) as { Key?: string; Value?: string }[]).map((tag) => [
          String(tag.Key),
          String(tag.Value),
        ]),
      ),
    };
  }

  for (const [logicalId, resource] of ofType('AWS::SNS::Topic')) {
    const properties = props(resource);
    const arn = attributeOf(ctx, template, logicalId, 'Ref');
    out.topics[arn] = {
      logicalId,
      arn,
      ...(typeof properties.KmsMasterKeyId === 'string' ? { kmsMasterKeyId: properties.KmsMasterKeyId } : {}),
    };
  }
  for (const [, resource] of ofType('AWS::SNS::TopicPolicy')) {
    const properties = props(resource);
    for (const topic of asList(properties.Topics)) {
      const entry = out.topics[String(topic)];
      if (entry) entry.policy = asPolicy(properties.PolicyDocument);
    }
  }

  for (const [logicalId] of ofType('AWS::S3::Bucket')) {
    const name = attributeOf(ctx, template, logicalId, 'Ref');
    out.buckets[name] = { logicalId, name, arn: attributeOf(ctx, template, logicalId, 'Arn') };
  }
  for (const [, resource] of ofType('AWS::S3::BucketPolicy')) {
    const properties = props(resource);
    const entry = out.buckets[String(properties.Bucket)];
    if (entry) entry.policy = asPolicy(properties.PolicyDocument);
  }

  for (const [logicalId] of ofType('AWS::SQS::Queue')) {
    const arn = attributeOf(ctx, template, logicalId, 'Arn');
    out.queues[arn] = { logicalId, arn, url: attributeOf(ctx, template, logicalId, 'Ref') };
  }
  for (const [, resource] of ofType('AWS::SQS::QueuePolicy')) {
    const properties = props(resource);
    for (const url of asList(properties.Queues)) {
      const entry = Object.values(out.queues).find((queue) => queue.url === String(url));
      if (entry) entry.policy = asPolicy(properties.PolicyDocument);
    }
  }

  const functionArnOf = (nameOrArn: string): string =>
    nameOrArn.startsWith('arn:')
      ? nameOrArn
      : `arn:${ctx.partition}:lambda:${ctx.region}:${ctx.accountId}:function:${nameOrArn}`;
  for (const [logicalId, resource] of ofType('AWS::Lambda::Permission')) {
    const properties = props(resource);
    const functionArn = functionArnOf(String(properties.FunctionName));
    const conditions: Record<string, Record<string, string>> = {};
    if (properties.SourceArn) conditions.ArnLike = { 'aws:SourceArn': String(properties.SourceArn) };
    if (properties.SourceAccount) conditions.StringEquals = { 'aws:SourceAccount': String(properties.SourceAccount) };
    const principal = String(properties.Principal);
    const policy = out.lambdaPolicies[functionArn] ?? { Version: '2012-10-17', Statement: [] };
    (policy.Statement as PolicyStatement[]).push({
      Sid: logicalId,
      Effect: 'Allow',
      Principal: principal.endsWith('.amazonaws.com') ? { Service: principal } : { AWS: principal },
      Action: String(properties.Action),
      Resource: functionArn,
      ...(Object.keys(conditions).length > 0 ? { Condition: conditions } : {}),
    });
    out.lambdaPolicies[functionArn] = policy;
  }

  for (const [logicalId, resource] of ofType('AWS::Events::Rule')) {
    const properties = props(resource);
    const targets = asList(properties.Targets) as { Arn?: string; DeadLetterConfig?: { Arn?: string } }[];
    out.rules.push({
      logicalId,
      arn: attributeOf(ctx, template, logicalId, 'Arn'),
      targets: targets.map((target) => String(target.Arn)),
      deadLetterQueues: targets.flatMap((target) =>
        target.DeadLetterConfig?.Arn ? [target.DeadLetterConfig.Arn] : [],
      ),
    });
  }

  for (const [logicalId, resource] of ofType('AWS::CloudWatch::Alarm')) {
    const properties = props(resource);
    out.alarms.push({
      logicalId,
      name: attributeOf(ctx, template, logicalId, 'Ref'),
      arn: attributeOf(ctx, template, logicalId, 'Arn'),
      actions: asList(properties.AlarmActions).map(String),
    });
  }

  for (const [, resource] of ofType('AWS::Lambda::EventInvokeConfig')) {
    const properties = props(resource) as {
      FunctionName?: string;
      DestinationConfig?: { OnFailure?: { Destination?: string } };
    };
    const destination = properties.DestinationConfig?.OnFailure?.Destination;
    if (properties.FunctionName && destination) {
      out.onFailureDestinations[functionArnOf(properties.FunctionName)] = destination;
    }
  }
  return out;
};

/** The key policy KMS gives a key made without one: the account root, delegating to IAM. */
export const defaultKeyPolicy = (ctx: { partition: string; accountId: string }): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'Enable IAM User Permissions',
      Effect: 'Allow',
      Principal: { AWS: `arn:${ctx.partition}:iam::${ctx.accountId}:root` },
      Action: 'kms:*',
      Resource: '*',
    },
  ],
});
