/**
 * vm-node HTTP JSON API (TypeBox schemas with their Static<> types). The
 * routes are DESIGN.md's contracts; keep changes additive.
 */
import { Type, type Static } from 'typebox';

export const LIMITS = {
  maxIdLength: 128,
  maxKeyLength: 256,
  maxValueLength: 4096,
} as const;

const Id = Type.String({ minLength: 1, maxLength: LIMITS.maxIdLength, pattern: '^[A-Za-z0-9._:-]+$' });

export const VmParams = Type.Object({ id: Id });
export type VmParams = Static<typeof VmParams>;

export const ClientOp = Type.Union([Type.Literal('get'), Type.Literal('put'), Type.Literal('incr'), Type.Literal('append')]);
export type ClientOp = Static<typeof ClientOp>;

/** POST /v1/vms/:id/requests. `value` is required for put and append. */
export const ClientRequest = Type.Object(
  {
    clientId: Id,
    requestId: Id,
    op: ClientOp,
    key: Type.String({ minLength: 1, maxLength: LIMITS.maxKeyLength }),
    value: Type.Optional(Type.String({ maxLength: LIMITS.maxValueLength })),
  },
  { additionalProperties: false },
);
export type ClientRequest = Static<typeof ClientRequest>;

/** 200 answer: the guest's value (a string, an integer for incr, null for a missing key). */
export const ClientReply = Type.Object({
  value: Type.Union([Type.String(), Type.Integer(), Type.Null()]),
});
export type ClientReply = Static<typeof ClientReply>;

/** Coded JSON error (what @mr/service-kit sends). */
export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
});
export type ErrorReply = Static<typeof ErrorReply>;

/** 503 from a node that is not the live primary: names the live one when it knows it. */
export const NotLiveReply = Type.Object({
  statusCode: Type.Literal(503),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  /** Base URL of the node believed live, if known. */
  live: Type.Optional(Type.String()),
  /** This node's role and why it is not serving. */
  role: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
});
export type NotLiveReply = Static<typeof NotLiveReply>;

export const Role = Type.Union([Type.Literal('primary'), Type.Literal('backup'), Type.Literal('stopped'), Type.Literal('joining')]);
export type Role = Static<typeof Role>;

export const PeerState = Type.Union([
  Type.Literal('none'),
  Type.Literal('connected'),
  Type.Literal('suspected'),
  Type.Literal('lost'),
  Type.Literal('joining'),
]);
export type PeerState = Static<typeof PeerState>;

/** GET /v1/vms/:id */
export const VmStatus = Type.Object({
  vmId: Type.String(),
  nodeId: Type.String(),
  role: Role,
  /** True only on the primary that holds the current epoch and serves clients. */
  live: Type.Boolean(),
  epoch: Type.Integer({ minimum: 0 }),
  guest: Type.Optional(Type.String()),
  icount: Type.Integer({ minimum: 0 }),
  log: Type.Object({
    /** Highest seq created (primary) or received (backup). */
    sent: Type.Integer({ minimum: 0 }),
    /** Highest seq acknowledged by the backup (primary) or consumed (backup). */
    acked: Type.Integer({ minimum: 0 }),
    unackedBytes: Type.Integer({ minimum: 0 }),
    bytesTotal: Type.Integer({ minimum: 0 }),
  }),
  outputs: Type.Object({
    held: Type.Integer({ minimum: 0 }),
    released: Type.Integer({ minimum: 0 }),
    suppressed: Type.Integer({ minimum: 0 }),
  }),
  peer: Type.Object({
    state: PeerState,
    url: Type.Optional(Type.String()),
    silentTicks: Type.Integer({ minimum: 0 }),
    /** Backup's executed icount as last acked (primary) / primary's newest logged icount (backup). */
    icount: Type.Integer({ minimum: 0 }),
    lagInstructions: Type.Integer(),
  }),
  /** State hash of the machine at instruction `icount` (a boundary both nodes pass). */
  hash: Type.Object({ icount: Type.Integer({ minimum: 0 }), value: Type.String() }),
  /** Why this node stopped (role 'stopped'). */
  reason: Type.Optional(Type.String()),
  live_url: Type.Optional(Type.String()),
});
export type VmStatus = Static<typeof VmStatus>;

// ---------------------------------------------------------------- storage node

/** POST /v1/vms/:id/tas — atomic test-and-set of the VM's epoch flag. */
export const TasRequest = Type.Object(
  { epoch: Type.Integer({ minimum: 1, maximum: 0xffffffff }), nodeId: Id },
  { additionalProperties: false },
);
export type TasRequest = Static<typeof TasRequest>;

/**
 * won: the flag moved to `epoch` for this node (or already was this node's at
 * that epoch: retries are idempotent). Otherwise `epoch`/`owner` name the
 * current holder.
 */
export const TasReply = Type.Object({ won: Type.Boolean(), epoch: Type.Integer({ minimum: 0 }), owner: Type.String() });
export type TasReply = Static<typeof TasReply>;

export const DiskBlockParams = Type.Object({ id: Id, block: Type.Integer({ minimum: 0, maximum: 0xffffffff }) });
export type DiskBlockParams = Static<typeof DiskBlockParams>;

/** PUT /v1/vms/:id/disk/:block — refused (409 FT_ERR_STALE_EPOCH) when epoch < the flag's epoch. */
export const DiskWriteRequest = Type.Object(
  { epoch: Type.Integer({ minimum: 1, maximum: 0xffffffff }), nodeId: Id, data: Type.String({ contentEncoding: 'base64', maxLength: 1 << 20 }) },
  { additionalProperties: false },
);
export type DiskWriteRequest = Static<typeof DiskWriteRequest>;

export const DiskWriteReply = Type.Object({ ok: Type.Boolean(), epoch: Type.Integer({ minimum: 0 }) });
export type DiskWriteReply = Static<typeof DiskWriteReply>;

/** GET /v1/vms/:id/disk/:block → data base64 (zeros for a never-written block). */
export const DiskReadReply = Type.Object({ data: Type.String({ contentEncoding: 'base64' }), epoch: Type.Integer({ minimum: 0 }) });
export type DiskReadReply = Static<typeof DiskReadReply>;

/** Storage's view of one VM (GET /v1/vms/:id on the storage node). */
export const StorageVmView = Type.Object({ vmId: Type.String(), epoch: Type.Integer({ minimum: 0 }), owner: Type.String(), blocks: Type.Integer({ minimum: 0 }) });
export type StorageVmView = Static<typeof StorageVmView>;

/** Error codes the FT routes use (in ErrorReply.code). */
export const FT_CODES = {
  notPrimary: 'FT_ERR_NOT_PRIMARY',
  staleEpoch: 'FT_ERR_STALE_EPOCH',
  unknownVm: 'FT_ERR_UNKNOWN_VM',
  backpressure: 'FT_ERR_BACKPRESSURE',
  stopped: 'FT_ERR_STOPPED',
} as const;
