import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { AwsServiceError, PreconditionFailedError, VerificationFailedError } from '../../../../../src/domain/errors';
import type { AliasEntry, KeyDescription, RotationRecord, RotationStatus, Tags } from '../../../../../src/domain/model';
import type {
  Clock,
  EncryptionContext,
  KeyAdmin,
  KeyCrypto,
  KeyProver,
  KeyReader,
  NewKeySpec,
  ThrowawayKeyAdmin,
} from '../../../../../src/domain/ports';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

/** The methods of the ports that change something in KMS. */
export const MUTATING_METHODS = [
  'rotateKeyOnDemand',
  'createKey',
  'tagKey',
  'updateAlias',
  'createAlias',
  'enableKeyRotation',
  'disableKeyRotation',
  'deleteAlias',
  'scheduleKeyDeletion',
] as const;
export type MutatingMethod = (typeof MUTATING_METHODS)[number];

/**
 * A broken key, to prove that verification catches it:
 * - `wrong-plaintext`: decryption (symmetric or asymmetric) returns other bytes than were encrypted;
 * - `accepts-tampering`: every signature and MAC verifies, forged or not;
 * - `rejects-all`: no signature or MAC ever verifies.
 */
export type KeyDefect = 'wrong-plaintext' | 'accepts-tampering' | 'rejects-all';

/** What an on-demand rotation does to the key's material, when KMS records it. */
export type RotationFault = 'drops-earlier-material' | 'corrupt-new-material';

interface Material {
  id: string;
  secret: Buffer;
  /** `CURRENT`, `NON_CURRENT`, or `PENDING_ROTATION` (imported, waiting for a rotation). */
  state: 'CURRENT' | 'NON_CURRENT' | 'PENDING_ROTATION';
  rotationDate?: Date;
  rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
}

interface FakeKey {
  meta: KeyDescription;
  tags: Record<string, string>;
  policy: string;
  materials: Material[];
  /** Secret of the signing and MAC "algorithms": HMAC under it, so tampering is detected. */
  proofSecret: Buffer;
  rsa?: { publicDer: Uint8Array; privateKey: KeyObject };
  rotationEnabled: boolean;
  periodDays?: number;
  onDemandStartedAt?: Date;
  /** An on-demand rotation KMS accepted: recorded after this many more `listRotations` calls. */
  pendingRotation?: { pollsLeft: number };
  defect?: KeyDefect;
}

export interface FakeKeyInit {
  keyId?: string;
  keySpec?: string;
  keyUsage?: string;
  origin?: string;
  keyManager?: string;
  keyState?: string;
  multiRegion?: boolean;
  multiRegionKeyType?: string;
  /** A multi-Region primary's replicas, as DescribeKey lists them. */
  replicaKeys?: { region: string; arn: string }[];
  customKeyStoreId?: string;
  description?: string;
  signingAlgorithms?: string[];
  macAlgorithms?: string[];
  encryptionAlgorithms?: string[];
  tags?: Record<string, string>;
  aliases?: string[];
  policy?: string;
  rotationEnabled?: boolean;
  periodDays?: number;
  /** Earlier rotations in the history: dates, newest last. */
  history?: { rotationType: 'AUTOMATIC' | 'ON_DEMAND'; rotationDate: Date }[];
  /** Imported material waiting for an on-demand rotation (`PENDING_ROTATION`). */
  pendingImportedMaterial?: boolean;
  onDemandRotationStartDate?: Date;
  defect?: KeyDefect;
}

/** One call of a port method, as the fake received it. */
export interface FakeCall {
  method: string;
  args: unknown[];
  /** Whether the call's work was done (false when a fault fired before it). */
  applied: boolean;
}

interface Fault {
  method: string;
  /** Counted from when the fault was armed. */
  nth: number;
  seen: number;
  /** `before`: fail without doing the work; `after`: do the work, then fail (the answer is lost). */
  when: 'before' | 'after';
  error: Error;
}

/** What a simulated crash throws: the process "dies" at that point. */
export class SimulatedCrash extends Error {
  constructor(where: string) {
    super(`simulated crash at ${where}`);
    this.name = 'SimulatedCrash';
  }
}

const keyIdFor = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const arnOf = (keyId: string): string => `arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}`;
const canonicalContext = (context: EncryptionContext): Buffer =>
  Buffer.from(JSON.stringify(Object.entries(context).sort(([a], [b]) => a.localeCompare(b))));
const flip = (data: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(data);
  copy[0] = (copy[0] ?? 0) ^ 0xff;
  return copy;
};

/**
 * An in-memory KMS behind the domain's ports. Keys have metadata, tags, aliases, key policy,
 * key material and a rotation history. Encryption really round-trips (AES-256-GCM under the
 * key's material, bound to the key and the encryption context); signatures and MACs are
 * HMACs under a per-key secret, so a tampered message or MAC is rejected. Every call is
 * recorded; a fault can be armed to fail the n-th call of a method, before or after its work.
 * Key ids are deterministic, so that the end states of separate runs can be compared.
 */
export class FakeKms implements KeyReader, KeyCrypto, KeyAdmin, KeyProver, ThrowawayKeyAdmin {
  readonly calls: FakeCall[] = [];
  /** Applies to the key material an on-demand rotation installs, when it is recorded. */
  rotationFault?: RotationFault;
  /** An on-demand rotation is recorded after this many `listRotations` calls; `never`: not within any wait. */
  recordOnDemandAfterPolls: number | 'never' = 1;
  /** Keys created by `createKey` from now on have this defect (a broken successor). */
  createdKeyDefect?: KeyDefect;
  private readonly keys = new Map<string, FakeKey>();
  private readonly aliases = new Map<string, string>();
  private readonly faults: Fault[] = [];
  private created = 0;
  private materials = 0;

  constructor(private readonly clock: Clock) {}

  // Setup and inspection (not part of the ports)

  addKey(init: FakeKeyInit = {}): string {
    this.created += 1;
    const keyId = init.keyId ?? keyIdFor(this.created);
    const origin = init.origin ?? 'AWS_KMS';
    const history = init.history ?? [];
    const materials: Material[] = [this.newMaterial('NON_CURRENT')];
    for (const entry of history) materials.push({ ...this.newMaterial('NON_CURRENT'), ...entry });
    const current = materials[materials.length - 1] as Material;
    current.state = 'CURRENT';
    if (init.pendingImportedMaterial) materials.push(this.newMaterial('PENDING_ROTATION'));
    this.keys.set(keyId, {
      meta: {
        keyId,
        arn: arnOf(keyId),
        keyState: init.keyState ?? 'Enabled',
        keySpec: init.keySpec ?? 'SYMMETRIC_DEFAULT',
        keyUsage: init.keyUsage ?? 'ENCRYPT_DECRYPT',
        origin,
        keyManager: init.keyManager ?? 'CUSTOMER',
        multiRegion: init.multiRegion ?? false,
        multiRegionKeyType: init.multiRegionKeyType,
        ...(init.replicaKeys ? { replicaKeys: init.replicaKeys } : {}),
        currentKeyMaterialId: current.id,
        creationDate: new Date('2025-01-01T00:00:00Z'),
        description: init.description ?? `key ${this.created}`,
        customKeyStoreId: init.customKeyStoreId,
        encryptionAlgorithms: init.encryptionAlgorithms,
        signingAlgorithms: init.signingAlgorithms,
        macAlgorithms: init.macAlgorithms,
      },
      tags: { ...(init.tags ?? {}) },
      policy: init.policy ?? `{"Version":"2012-10-17","Id":"policy-of-${keyId}"}`,
      materials,
      proofSecret: randomBytes(32),
      rotationEnabled: init.rotationEnabled ?? false,
      periodDays: init.periodDays,
      onDemandStartedAt: init.onDemandRotationStartDate,
      defect: init.defect,
    });
    for (const alias of init.aliases ?? []) this.aliases.set(alias, keyId);
    return keyId;
  }

  /** Arms a fault: the n-th call of `method` from now fails, once. */
  failAt(method: string, nth: number, options: { when?: 'before' | 'after'; error?: Error } = {}): void {
    const when = options.when ?? 'before';
    this.faults.push({
      method,
      nth,
      seen: 0,
      when,
      error: options.error ?? new SimulatedCrash(`${when} ${method} #${nth}`),
    });
  }

  get pendingFaults(): number {
    return this.faults.length;
  }

  setKeyState(keyId: string, keyState: string): void {
    this.key(keyId).meta.keyState = keyState;
  }

  setDefect(keyId: string, defect: KeyDefect | undefined): void {
    this.key(keyId).defect = defect;
  }

  keyIds(): string[] {
    return [...this.keys.keys()];
  }

  tagsOf(keyId: string): Record<string, string> {
    return { ...this.key(keyId).tags };
  }

  aliasTarget(aliasName: string): string | undefined {
    return this.aliases.get(aliasName);
  }

  rotationOf(keyId: string): { enabled: boolean; periodDays?: number; onDemandRotations: number } {
    const key = this.key(keyId);
    return {
      enabled: key.rotationEnabled,
      periodDays: key.periodDays,
      onDemandRotations: key.materials.filter((material) => material.rotationType === 'ON_DEMAND').length,
    };
  }

  /** Calls received since `from` (an index into `calls`), optionally of one method. */
  callsSince(from: number, method?: string): FakeCall[] {
    return this.calls.slice(from).filter((call) => method === undefined || call.method === method);
  }

  /** Calls of the mutating methods received since `from`, whether or not their work was done. */
  mutationsSince(from = 0): FakeCall[] {
    return this.calls
      .slice(from)
      .filter((call) => (MUTATING_METHODS as readonly string[]).includes(call.method) && call.applied);
  }

  mutatingCallsSince(from = 0): FakeCall[] {
    return this.calls.slice(from).filter((call) => (MUTATING_METHODS as readonly string[]).includes(call.method));
  }

  /** Everything a rotation can change, in a form two runs can be compared by. */
  snapshot(): {
    keys: { keyId: string; keyState: string; tags: Record<string, string>; rotation: string }[];
    aliases: string[];
  } {
    return {
      keys: [...this.keys.values()]
        .map((key) => ({
          keyId: key.meta.keyId,
          keyState: key.meta.keyState,
          tags: Object.fromEntries(Object.entries(key.tags).sort(([a], [b]) => a.localeCompare(b))),
          rotation: `${key.rotationEnabled ? 'enabled' : 'disabled'}/${key.periodDays ?? '-'}`,
        }))
        .sort((a, b) => a.keyId.localeCompare(b.keyId)),
      aliases: [...this.aliases].map(([alias, target]) => `${alias}->${target}`).sort(),
    };
  }

  // KeyReader

  async describeKey(keyRef: string): Promise<KeyDescription> {
    return this.call('describeKey', [keyRef], () => this.copyOf(this.resolve(keyRef).meta));
  }

  async getRotationStatus(keyId: string): Promise<RotationStatus> {
    return this.call('getRotationStatus', [keyId], () => {
      const key = this.resolve(keyId);
      return {
        enabled: key.rotationEnabled,
        periodDays: key.periodDays,
        onDemandRotationStartDate: key.onDemandStartedAt,
      };
    });
  }

  async listRotations(keyId: string, options: { includeKeyMaterial?: boolean } = {}): Promise<RotationRecord[]> {
    return this.call('listRotations', [keyId, options], () => {
      const key = this.resolve(keyId);
      this.progressPendingRotation(key);
      return key.materials
        .filter((material) => options.includeKeyMaterial || material.rotationType !== undefined)
        .map((material) => ({
          keyMaterialId: material.id,
          rotationDate: material.rotationDate,
          rotationType: material.rotationType,
          ...(options.includeKeyMaterial ? { keyMaterialState: material.state } : {}),
          ...(options.includeKeyMaterial && key.meta.origin === 'EXTERNAL' ? { importState: 'IMPORTED' } : {}),
        }));
    });
  }

  async listAliasesOf(keyId: string): Promise<AliasEntry[]> {
    return this.call('listAliasesOf', [keyId], () => {
      const key = this.resolve(keyId);
      return [...this.aliases]
        .filter(([, target]) => target === key.meta.keyId)
        .map(([aliasName, targetKeyId]) => ({ aliasName, targetKeyId }));
    });
  }

  async listTags(keyId: string): Promise<Tags> {
    return this.call('listTags', [keyId], () => ({ ...this.resolve(keyId).tags }));
  }

  // KeyCrypto

  async encrypt(
    keyRef: string,
    plaintext: Uint8Array,
    context: EncryptionContext,
  ): Promise<{ ciphertext: Uint8Array; keyArn: string }> {
    return this.call('encrypt', [keyRef], () => {
      const key = this.usable(keyRef, 'ENCRYPT_DECRYPT', true);
      const material = key.materials.find((candidate) => candidate.state === 'CURRENT') as Material;
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', material.secret, iv);
      cipher.setAAD(canonicalContext(context));
      const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      const envelope = { k: key.meta.keyId, m: material.id, iv: iv.toString('base64'), t: '', d: '' };
      envelope.t = cipher.getAuthTag().toString('base64');
      envelope.d = data.toString('base64');
      return { ciphertext: new Uint8Array(Buffer.from(JSON.stringify(envelope))), keyArn: key.meta.arn };
    });
  }

  async decrypt(
    keyId: string,
    ciphertext: Uint8Array,
    context: EncryptionContext,
  ): Promise<{ plaintext: Uint8Array; keyArn: string }> {
    return this.call('decrypt', [keyId], () => {
      const key = this.usable(keyId, 'ENCRYPT_DECRYPT', true);
      let envelope: { k: string; m: string; iv: string; t: string; d: string };
      try {
        envelope = JSON.parse(Buffer.from(ciphertext).toString());
      } catch {
        throw new VerificationFailedError('Decrypt failed: InvalidCiphertextException');
      }
      if (envelope.k !== key.meta.keyId) {
        throw new VerificationFailedError(`Decrypt failed: IncorrectKeyException (made by ${envelope.k})`);
      }
      const material = key.materials.find((candidate) => candidate.id === envelope.m);
      if (!material) throw new VerificationFailedError('Decrypt failed: InvalidCiphertextException (unknown material)');
      let plaintext: Uint8Array;
      try {
        const decipher = createDecipheriv('aes-256-gcm', material.secret, Buffer.from(envelope.iv, 'base64'));
        decipher.setAAD(canonicalContext(context));
        decipher.setAuthTag(Buffer.from(envelope.t, 'base64'));
        plaintext = new Uint8Array(
          Buffer.concat([decipher.update(Buffer.from(envelope.d, 'base64')), decipher.final()]),
        );
      } catch {
        throw new VerificationFailedError('Decrypt failed: InvalidCiphertextException');
      }
      return { plaintext: key.defect === 'wrong-plaintext' ? flip(plaintext) : plaintext, keyArn: key.meta.arn };
    });
  }

  // KeyProver

  async sign(keyId: string, message: Uint8Array, algorithm: string): Promise<Uint8Array> {
    return this.call('sign', [keyId, algorithm], () =>
      this.proof(this.usable(keyId, 'SIGN_VERIFY'), message, algorithm),
    );
  }

  async verify(keyId: string, message: Uint8Array, signature: Uint8Array, algorithm: string): Promise<boolean> {
    return this.call('verify', [keyId, algorithm], () =>
      this.checkProof(this.usable(keyId, 'SIGN_VERIFY'), message, signature, algorithm),
    );
  }

  async generateMac(keyId: string, message: Uint8Array, algorithm: string): Promise<Uint8Array> {
    return this.call('generateMac', [keyId, algorithm], () =>
      this.proof(this.usable(keyId, 'GENERATE_VERIFY_MAC'), message, algorithm),
    );
  }

  async verifyMac(keyId: string, message: Uint8Array, mac: Uint8Array, algorithm: string): Promise<boolean> {
    return this.call('verifyMac', [keyId, algorithm], () =>
      this.checkProof(this.usable(keyId, 'GENERATE_VERIFY_MAC'), message, mac, algorithm),
    );
  }

  async getPublicKey(keyId: string): Promise<Uint8Array> {
    return this.call('getPublicKey', [keyId], () => this.rsaOf(this.usable(keyId, 'ENCRYPT_DECRYPT')).publicDer);
  }

  async decryptAsymmetric(keyId: string, ciphertext: Uint8Array, algorithm: string): Promise<Uint8Array> {
    return this.call('decryptAsymmetric', [keyId, algorithm], () => {
      const key = this.usable(keyId, 'ENCRYPT_DECRYPT');
      const oaepHash = { RSAES_OAEP_SHA_1: 'sha1', RSAES_OAEP_SHA_256: 'sha256' }[algorithm];
      if (!oaepHash) throw new PreconditionFailedError('wrong-key-type', `fake KMS does not know ${algorithm}`);
      let plaintext: Uint8Array;
      try {
        plaintext = new Uint8Array(
          privateDecrypt(
            { key: this.rsaOf(key).privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
            ciphertext,
          ),
        );
      } catch {
        throw new VerificationFailedError('Decrypt failed: InvalidCiphertextException');
      }
      return key.defect === 'wrong-plaintext' ? flip(plaintext) : plaintext;
    });
  }

  // KeyAdmin

  async rotateKeyOnDemand(keyId: string): Promise<void> {
    return this.call('rotateKeyOnDemand', [keyId], () => {
      const key = this.usable(keyId, 'ENCRYPT_DECRYPT', true);
      if (key.onDemandStartedAt) {
        throw new PreconditionFailedError('rotation-conflict', `${keyId}: an on-demand rotation is in progress`);
      }
      key.onDemandStartedAt = this.clock.now();
      key.pendingRotation = {
        pollsLeft: this.recordOnDemandAfterPolls === 'never' ? Number.POSITIVE_INFINITY : this.recordOnDemandAfterPolls,
      };
    });
  }

  async getKeyPolicy(keyId: string): Promise<string> {
    return this.call('getKeyPolicy', [keyId], () => this.resolve(keyId).policy);
  }

  async createKey(spec: NewKeySpec): Promise<KeyDescription> {
    return this.call('createKey', [spec], () => {
      const keyId = this.addKey({
        keySpec: spec.keySpec,
        keyUsage: spec.keyUsage,
        origin: spec.origin ?? 'AWS_KMS',
        customKeyStoreId: spec.customKeyStoreId,
        description: spec.description,
        policy: spec.policy,
        tags: { ...spec.tags },
        defect: this.createdKeyDefect,
      });
      const key = this.key(keyId);
      key.meta.creationDate = this.clock.now();
      return this.copyOf(key.meta);
    });
  }

  async tagKey(keyId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    return this.call('tagKey', [keyId, { ...tags }], () => {
      Object.assign(this.resolve(keyId).tags, tags);
    });
  }

  async updateAlias(aliasName: string, targetKeyId: string): Promise<void> {
    return this.call('updateAlias', [aliasName, targetKeyId], () => {
      if (!this.aliases.has(aliasName)) {
        throw new PreconditionFailedError('key-not-found', `${aliasName} was not found (NotFoundException)`);
      }
      this.aliases.set(aliasName, this.resolve(targetKeyId).meta.keyId);
    });
  }

  async createAlias(aliasName: string, targetKeyId: string): Promise<void> {
    return this.call('createAlias', [aliasName, targetKeyId], () => {
      if (this.aliases.has(aliasName)) {
        throw new AwsServiceError('CreateAlias', false, `${aliasName} exists (AlreadyExistsException)`);
      }
      this.aliases.set(aliasName, this.resolve(targetKeyId).meta.keyId);
    });
  }

  async enableKeyRotation(keyId: string, periodDays?: number): Promise<void> {
    return this.call('enableKeyRotation', [keyId, periodDays], () => {
      const key = this.resolve(keyId);
      key.rotationEnabled = true;
      key.periodDays = periodDays ?? 365;
    });
  }

  async disableKeyRotation(keyId: string): Promise<void> {
    return this.call('disableKeyRotation', [keyId], () => {
      this.resolve(keyId).rotationEnabled = false;
    });
  }

  async deleteAlias(aliasName: string): Promise<void> {
    return this.call('deleteAlias', [aliasName], () => {
      if (!this.aliases.delete(aliasName)) {
        throw new PreconditionFailedError('key-not-found', `${aliasName} was not found (NotFoundException)`);
      }
    });
  }

  async scheduleKeyDeletion(keyId: string, pendingWindowDays: number): Promise<Date | undefined> {
    return this.call('scheduleKeyDeletion', [keyId, pendingWindowDays], () => {
      const key = this.resolve(keyId);
      if (key.meta.keyState === 'PendingDeletion') {
        throw new PreconditionFailedError(
          'key-invalid-state',
          `${keyId} is pending deletion (KMSInvalidStateException)`,
        );
      }
      key.meta.keyState = 'PendingDeletion';
      key.meta.deletionDate = new Date(this.clock.now().getTime() + pendingWindowDays * 86_400_000);
      return key.meta.deletionDate;
    });
  }

  /** The Resource Groups Tagging API's view of the keys, read consistently here. */
  async keysTagged(tagKey: string, tagValue: string): Promise<{ keyId: string; tags: Tags }[]> {
    return this.call('keysTagged', [tagKey, tagValue], () =>
      [...this.keys.values()]
        .filter((key) => key.tags[tagKey] === tagValue)
        .map((key) => ({ keyId: key.meta.keyId, tags: { ...key.tags } })),
    );
  }

  // Internals

  private async call<T>(method: string, args: unknown[], work: () => T): Promise<T> {
    const record: FakeCall = { method, args, applied: false };
    this.calls.push(record);
    const fault = this.faults.find((candidate) => candidate.method === method);
    if (fault) fault.seen += 1;
    const fires = fault !== undefined && fault.seen === fault.nth;
    if (fires) this.faults.splice(this.faults.indexOf(fault), 1);
    if (fires && fault.when === 'before') throw fault.error;
    const result = work();
    record.applied = true;
    if (fires && fault.when === 'after') throw fault.error;
    return result;
  }

  private key(keyId: string): FakeKey {
    const key = this.keys.get(keyId);
    if (!key) throw new PreconditionFailedError('key-not-found', `${keyId} was not found (NotFoundException)`);
    return key;
  }

  /** Key id, key ARN, alias name or alias ARN. */
  private resolve(ref: string): FakeKey {
    const aliasName = ref.startsWith('alias/') ? ref : /^arn:aws:kms:[^:]+:\d{12}:(alias\/.+)$/.exec(ref)?.[1];
    if (aliasName !== undefined) {
      const target = this.aliases.get(aliasName);
      if (!target) throw new PreconditionFailedError('key-not-found', `${ref} was not found (NotFoundException)`);
      return this.key(target);
    }
    const keyArn = /^arn:aws:kms:[^:]+:\d{12}:key\/(.+)$/.exec(ref);
    return this.key(keyArn?.[1] ?? ref);
  }

  /** A key that can do a cryptographic operation of `usage` now. */
  private usable(ref: string, usage: string, symmetric = false): FakeKey {
    const key = this.resolve(ref);
    if (key.meta.keyState === 'Disabled') {
      throw new PreconditionFailedError('key-disabled', `${key.meta.keyId} is disabled (DisabledException)`);
    }
    if (key.meta.keyState !== 'Enabled') {
      throw new PreconditionFailedError('key-invalid-state', `${key.meta.keyId} is ${key.meta.keyState}`);
    }
    if (key.meta.keyUsage !== usage || (symmetric && key.meta.keySpec !== 'SYMMETRIC_DEFAULT')) {
      throw new VerificationFailedError(
        `${key.meta.keyId} is ${key.meta.keySpec} / ${key.meta.keyUsage} (InvalidKeyUsageException)`,
      );
    }
    return key;
  }

  private proof(key: FakeKey, message: Uint8Array, algorithm: string): Uint8Array {
    return new Uint8Array(createHmac('sha256', key.proofSecret).update(algorithm).update(message).digest());
  }

  private checkProof(key: FakeKey, message: Uint8Array, proof: Uint8Array, algorithm: string): boolean {
    if (key.defect === 'accepts-tampering') return true;
    if (key.defect === 'rejects-all') return false;
    const expected = this.proof(key, message, algorithm);
    return expected.length === proof.length && timingSafeEqual(expected, proof);
  }

  private rsaOf(key: FakeKey): { publicDer: Uint8Array; privateKey: KeyObject } {
    if (!key.rsa) {
      const modulusLength = Number(/^RSA_(\d+)$/.exec(key.meta.keySpec ?? '')?.[1] ?? 2048);
      const pair = generateKeyPairSync('rsa', { modulusLength });
      key.rsa = {
        publicDer: new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' })),
        privateKey: pair.privateKey,
      };
    }
    return key.rsa;
  }

  private newMaterial(state: Material['state']): Material {
    this.materials += 1;
    return { id: `material-${this.materials.toString().padStart(4, '0')}`, secret: randomBytes(32), state };
  }

  /** KMS records an accepted on-demand rotation a while later: here, after some history reads. */
  private progressPendingRotation(key: FakeKey): void {
    if (!key.pendingRotation) return;
    key.pendingRotation.pollsLeft -= 1;
    if (key.pendingRotation.pollsLeft > 0) return;
    key.pendingRotation = undefined;
    key.onDemandStartedAt = undefined;
    const pending = key.materials.find((material) => material.state === 'PENDING_ROTATION');
    const next = pending ?? this.newMaterial('NON_CURRENT');
    if (!pending) key.materials.push(next);
    if (this.rotationFault === 'drops-earlier-material') key.materials = [next];
    for (const material of key.materials) material.state = 'NON_CURRENT';
    next.state = 'CURRENT';
    next.rotationDate = this.clock.now();
    next.rotationType = 'ON_DEMAND';
    key.meta.currentKeyMaterialId = next.id;
    if (this.rotationFault === 'corrupt-new-material') key.defect = 'wrong-plaintext';
  }

  private copyOf(meta: KeyDescription): KeyDescription {
    return {
      ...meta,
      encryptionAlgorithms: meta.encryptionAlgorithms && [...meta.encryptionAlgorithms],
      signingAlgorithms: meta.signingAlgorithms && [...meta.signingAlgorithms],
      macAlgorithms: meta.macAlgorithms && [...meta.macAlgorithms],
    };
  }
}
