import { createHmac, randomUUID } from 'node:crypto';
import { PreconditionFailedError } from '../../../src/domain/errors';
import type { KeyDescription, RotationRecord, Tags } from '../../../src/domain/model';
import type { KeyAdmin, KeyCrypto, KeyProver, KeyReader, NewKeySpec } from '../../../src/domain/ports';

interface FakeKey {
  meta: KeyDescription;
  tags: Record<string, string>;
  secret: string;
  policy: string;
  rotations: RotationRecord[];
  rotationEnabled: boolean;
}

/** Thrown by a crash point: the process "dies" there, leaving whatever was already done. */
export class Crash extends Error {
  constructor(where: string) {
    super(`crash at ${where}`);
    this.name = 'Crash';
  }
}

/**
 * An in-memory KMS for the domain's ports: real round trips (a per-key secret; tampering is
 * detected), tags, aliases, rotation history. Records every change, and can crash after the
 * n-th call of a method, after the change is made, as a process dying there would.
 */
export class FakeKms implements KeyReader, KeyCrypto, KeyAdmin, KeyProver {
  readonly keys = new Map<string, FakeKey>();
  readonly aliases = new Map<string, string>();
  readonly changes: string[] = [];
  private calls: Record<string, number> = {};
  private crashAt?: { method: string; nth: number };
  private failures = new Map<string, Error>();
  private created = 0;

  addKey(meta: Partial<KeyDescription>, tags: Tags = {}, aliases: string[] = []): string {
    this.created += 1;
    // Deterministic ids, so that the end states of separate runs compare equal.
    const keyId = meta.keyId ?? `00000000-0000-4000-8000-${String(this.created).padStart(12, '0')}`;
    this.keys.set(keyId, {
      meta: {
        keyId,
        arn: `arn:aws:kms:us-east-1:123456789012:key/${keyId}`,
        keyState: 'Enabled',
        keySpec: 'SYMMETRIC_DEFAULT',
        keyUsage: 'ENCRYPT_DECRYPT',
        origin: 'AWS_KMS',
        keyManager: 'CUSTOMER',
        description: 'test key',
        creationDate: new Date('2026-01-01T00:00:00Z'),
        ...meta,
      },
      tags: { ...tags },
      secret: randomUUID(),
      policy: '{"Statement":[]}',
      rotations: [],
      rotationEnabled: false,
    });
    for (const alias of aliases) this.aliases.set(alias, keyId);
    return keyId;
  }

  /** After the n-th call (from now) of `method` has done its work, throw. */
  crashAfter(method: string, nth = 1): void {
    this.crashAt = { method, nth: (this.calls[method] ?? 0) + nth };
  }

  /** The next call of `method` fails with `error` before doing anything. */
  failNext(method: string, error: Error): void {
    this.failures.set(method, error);
  }

  key(keyId: string): FakeKey {
    const key = this.keys.get(keyId);
    if (!key) throw new PreconditionFailedError('key-not-found', `${keyId} not found`);
    return key;
  }

  private resolve(ref: string): FakeKey {
    const id = ref.startsWith('alias/') ? this.aliases.get(ref) : ref.split('key/').pop();
    if (!id) throw new PreconditionFailedError('key-not-found', `${ref} not found`);
    return this.key(id);
  }

  private enter(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    const failure = this.failures.get(method);
    if (failure) {
      this.failures.delete(method);
      throw failure;
    }
  }

  private leave(method: string): void {
    if (this.crashAt?.method === method && this.calls[method] === this.crashAt.nth) {
      this.crashAt = undefined;
      throw new Crash(`${method} #${this.calls[method]}`);
    }
  }

  private mac(key: FakeKey, message: Uint8Array): Uint8Array {
    return new Uint8Array(createHmac('sha256', key.secret).update(message).digest());
  }

  // KeyReader
  async describeKey(keyRef: string) {
    this.enter('describeKey');
    return { ...this.resolve(keyRef).meta };
  }
  async listTags(keyId: string) {
    this.enter('listTags');
    return { ...this.key(keyId).tags };
  }
  async getRotationStatus(keyId: string) {
    this.enter('getRotationStatus');
    return { enabled: this.key(keyId).rotationEnabled };
  }
  async listRotations(keyId: string, options?: { includeKeyMaterial?: boolean }) {
    this.enter('listRotations');
    const key = this.key(keyId);
    return options?.includeKeyMaterial ? [...key.rotations] : key.rotations.filter((record) => record.rotationType);
  }
  async listAliasesOf(keyId: string) {
    this.enter('listAliasesOf');
    return [...this.aliases]
      .filter(([, target]) => target === keyId)
      .map(([aliasName]) => ({ aliasName, targetKeyId: keyId }));
  }

  // KeyCrypto: ciphertext = keyId | plaintext | mac(plaintext)
  async encrypt(keyRef: string, plaintext: Uint8Array) {
    this.enter('encrypt');
    const key = this.resolve(keyRef);
    const ciphertext = new TextEncoder().encode(
      JSON.stringify({ k: key.meta.keyId, p: [...plaintext], m: [...this.mac(key, plaintext)] }),
    );
    return { ciphertext, keyArn: key.meta.arn };
  }
  async decrypt(keyId: string, ciphertext: Uint8Array) {
    this.enter('decrypt');
    const key = this.resolve(keyId);
    const blob = JSON.parse(new TextDecoder().decode(ciphertext)) as { k: string; p: number[]; m: number[] };
    if (
      blob.k !== key.meta.keyId ||
      Buffer.compare(Buffer.from(blob.m), Buffer.from(this.mac(key, new Uint8Array(blob.p)))) !== 0
    ) {
      throw new PreconditionFailedError('key-invalid-state', 'InvalidCiphertextException');
    }
    return { plaintext: new Uint8Array(blob.p), keyArn: key.meta.arn };
  }

  // KeyProver
  async sign(keyId: string, message: Uint8Array) {
    this.enter('sign');
    return this.mac(this.resolve(keyId), message);
  }
  async verify(keyId: string, message: Uint8Array, signature: Uint8Array) {
    this.enter('verify');
    return Buffer.compare(Buffer.from(signature), Buffer.from(this.mac(this.resolve(keyId), message))) === 0;
  }
  async generateMac(keyId: string, message: Uint8Array) {
    this.enter('generateMac');
    return this.mac(this.resolve(keyId), message);
  }
  async verifyMac(keyId: string, message: Uint8Array, mac: Uint8Array) {
    this.enter('verifyMac');
    return Buffer.compare(Buffer.from(mac), Buffer.from(this.mac(this.resolve(keyId), message))) === 0;
  }
  async getPublicKey(): Promise<Uint8Array> {
    this.enter('getPublicKey');
    return new Uint8Array(0);
  }
  async decryptAsymmetric(): Promise<Uint8Array> {
    this.enter('decryptAsymmetric');
    throw new Error('not used');
  }

  // KeyAdmin
  async rotateKeyOnDemand(keyId: string) {
    this.enter('rotateKeyOnDemand');
    const key = this.key(keyId);
    key.rotations.push({
      rotationType: 'ON_DEMAND',
      rotationDate: new Date(),
      keyMaterialId: randomUUID().replace(/-/g, ''),
    });
    this.changes.push(`RotateKeyOnDemand ${keyId}`);
    this.leave('rotateKeyOnDemand');
  }
  async getKeyPolicy(keyId: string) {
    this.enter('getKeyPolicy');
    return this.key(keyId).policy;
  }
  async createKey(spec: NewKeySpec) {
    this.enter('createKey');
    const keyId = this.addKey(
      { keySpec: spec.keySpec, keyUsage: spec.keyUsage, description: spec.description },
      spec.tags,
    );
    this.key(keyId).policy = spec.policy;
    this.changes.push(`CreateKey ${keyId}`);
    this.leave('createKey');
    return { ...this.key(keyId).meta };
  }
  async tagKey(keyId: string, tags: Readonly<Record<string, string>>) {
    this.enter('tagKey');
    Object.assign(this.key(keyId).tags, tags);
    this.changes.push(`TagResource ${keyId} ${Object.keys(tags).sort().join(',')}`);
    this.leave('tagKey');
  }
  async untagKey(keyId: string, tagKeys: readonly string[]) {
    this.enter('untagKey');
    for (const tagKey of tagKeys) delete this.key(keyId).tags[tagKey];
    this.changes.push(`UntagResource ${keyId} ${[...tagKeys].sort().join(',')}`);
    this.leave('untagKey');
  }
  async updateAlias(aliasName: string, targetKeyId: string) {
    this.enter('updateAlias');
    this.aliases.set(aliasName, targetKeyId);
    this.changes.push(`UpdateAlias ${aliasName} ${targetKeyId}`);
    this.leave('updateAlias');
  }
  async createAlias(aliasName: string, targetKeyId: string) {
    this.enter('createAlias');
    this.aliases.set(aliasName, targetKeyId);
    this.changes.push(`CreateAlias ${aliasName} ${targetKeyId}`);
    this.leave('createAlias');
  }
  async enableKeyRotation(keyId: string) {
    this.enter('enableKeyRotation');
    this.key(keyId).rotationEnabled = true;
    this.changes.push(`EnableKeyRotation ${keyId}`);
    this.leave('enableKeyRotation');
  }
  async findKeysByTag(tagKey: string, tagValue: string) {
    this.enter('findKeysByTag');
    return [...this.keys].filter(([, key]) => key.tags[tagKey] === tagValue).map(([id]) => id);
  }

  /** Everything that matters after a rotation, for comparing end states. */
  snapshot() {
    return {
      keys: Object.fromEntries(
        [...this.keys].map(([keyId, key]) => [
          keyId,
          {
            state: key.meta.keyState,
            tags: Object.fromEntries(Object.entries(key.tags).filter(([tag]) => tag !== 'kms-rotation:rotated-at')),
          },
        ]),
      ),
      aliases: Object.fromEntries(this.aliases),
    };
  }
}
