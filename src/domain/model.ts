/** What the service knows about a KMS key, independent of the SDK's shapes. */
export interface KeyDescription {
  keyId: string;
  arn: string;
  /** `Enabled`, `Disabled`, `PendingDeletion`, `PendingImport`, ... */
  keyState: string;
  keySpec?: string;
  keyUsage?: string;
  /** `AWS_KMS`, `EXTERNAL`, `AWS_CLOUDHSM`, `EXTERNAL_KEY_STORE`. */
  origin?: string;
  /** `CUSTOMER` or `AWS`. */
  keyManager?: string;
  multiRegion?: boolean;
  multiRegionKeyType?: string;
  /** A multi-Region primary key's replicas, as its DescribeKey lists them (`MultiRegionConfiguration.ReplicaKeys`). */
  replicaKeys?: { region: string; arn: string }[];
  currentKeyMaterialId?: string;
  /**
   * Imported material only (`Origin: EXTERNAL`): `KEY_MATERIAL_EXPIRES` or
   * `KEY_MATERIAL_DOES_NOT_EXPIRE` (docs/kms-facts.md#imported-key-material).
   */
  expirationModel?: string;
  /** Imported material that expires: the earliest expiry of any material permanently associated with the key. */
  validTo?: Date;
  creationDate?: Date;
  deletionDate?: Date;
  description?: string;
  customKeyStoreId?: string;
  encryptionAlgorithms?: string[];
  signingAlgorithms?: string[];
  macAlgorithms?: string[];
}

export interface RotationStatus {
  enabled: boolean;
  /** Absent when KMS does not report it. */
  periodDays?: number;
  nextRotationDate?: Date;
  /** Present while an on-demand rotation is in progress. */
  onDemandRotationStartDate?: Date;
}

export type RotationType = 'AUTOMATIC' | 'ON_DEMAND';

/** One entry of ListKeyRotations. */
export interface RotationRecord {
  keyMaterialId?: string;
  rotationDate?: Date;
  rotationType?: RotationType;
  /** `CURRENT`, `NON_CURRENT`, `PENDING_ROTATION`, ... (only with `includeKeyMaterial`, for some keys). */
  keyMaterialState?: string;
  /** Imported material only: `IMPORTED` or `PENDING_IMPORT`. */
  importState?: string;
  /** Imported material only: `KEY_MATERIAL_EXPIRES` or `KEY_MATERIAL_DOES_NOT_EXPIRE`. */
  expirationModel?: string;
  /** Imported material that expires: when this material does. */
  validTo?: Date;
}

export interface AliasEntry {
  aliasName: string;
  targetKeyId?: string;
}

export type Tags = Readonly<Record<string, string>>;

/** A KMS rotation as reported by the `KMS CMK Rotation` event, after schema validation. */
export interface RotationEvent {
  eventId: string;
  time: Date;
  account: string;
  region: string;
  keyId: string;
  keyArn: string;
  rotationType?: RotationType;
  keyOrigin?: string;
  previousKeyMaterialId?: string;
  currentKeyMaterialId?: string;
}

export type Severity = 'INFO' | 'WARNING' | 'CRITICAL';

export type NotificationType =
  | 'RotationValidated'
  | 'RotationValidationFailed'
  | 'RotationCompleted'
  | 'RotationFailed'
  | 'DriftDetected'
  | 'DriftRemediated'
  | 'AuditCompleted'
  | 'ImportedMaterialExpiring'
  | 'RotationDue'
  | 'ReplicaMaterialLagging'
  | 'PredecessorDisabled'
  | 'PredecessorDeletionScheduled'
  | 'PredecessorInUse';

/** The SNS message contract (docs/architecture.md#notifications): the JSON body of every notification. */
export interface Notification {
  type: NotificationType;
  severity: Severity;
  keyId: string;
  keyArn: string;
  aliases: string[];
  account: string;
  region: string;
  occurredAt: string;
  summary: string;
  details: Record<string, unknown>;
  /** Set on every notification of a `selfTest` run: it concerns throwaway keys only. */
  selfTest?: boolean;
}

/** Where the service runs: events from elsewhere are refused. */
export interface ServiceLocation {
  /** `aws`, `aws-cn`, `aws-us-gov`, ...: ARNs of another partition name nothing here. */
  partition: string;
  account: string;
  region: string;
}
