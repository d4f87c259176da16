/**
 * vm-node HTTP JSON API (TypeBox schemas with their Static<> types). The
 * routes are DESIGN.md's contracts; keep changes additive. (Exception: client
 * requests moved from (clientId, requestId) to sessions, for exactly-once.)
 */
import { Type, type Static } from 'typebox';
import { MAX_EPOCH } from './tas.ts';

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

const U32 = 0xffffffff;

/**
 * A client session (kv guest): opened by POST /v1/vms/:id/sessions, assigned by
 * the guest, replicated like any request. See README "Client sessions".
 */
export const SessionId = Type.Integer({ minimum: 1, maximum: U32 });

/**
 * POST /v1/vms/:id/requests. `value` is required for put and append.
 * `session`, `seq` and `ackBelow` go together; they are required for every op
 * but get (a get without a session changes nothing, so it needs no dedup).
 * `seq` numbers the session's requests from 1; `ackBelow` is the lowest seq
 * whose answer the client has not received yet (it has every answer below it,
 * so the guest may forget them): at most `seq`.
 */
export const ClientRequest = Type.Object(
  {
    session: Type.Optional(SessionId),
    seq: Type.Optional(Type.Integer({ minimum: 1, maximum: U32 })),
    ackBelow: Type.Optional(Type.Integer({ minimum: 1, maximum: U32 })),
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

/** 201 answer of POST /v1/vms/:id/sessions: the new session and the guest's limits. */
export const SessionReply = Type.Object({
  session: SessionId,
  /** Requests per session that may be unanswered at once: seq < ackBelow + maxOutstanding. */
  maxOutstanding: Type.Integer({ minimum: 1 }),
  /** Sessions the guest keeps; opening one more expires the least recently used. */
  maxSessions: Type.Integer({ minimum: 1 }),
});
export type SessionReply = Static<typeof SessionReply>;

/** DELETE /v1/vms/:id/sessions/:session */
export const SessionParams = Type.Object({ id: Id, session: SessionId });
export type SessionParams = Static<typeof SessionParams>;

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
//
// Every storage route requires the peer credential (MR_PEER_TOKEN); the VM
// nodes are its only clients. A storage node configured with its VMs
// (`mr vm storage --vm vm1=a,b`) answers 404 FT_ERR_UNKNOWN_VM for any other
// VM id and refuses test-and-set from node ids not registered for that VM.

/** A VM id at the storage node: also a file name there, so no slashes and no leading dot. */
export const StorageVmId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' });
export const StorageVmParams = Type.Object({ id: StorageVmId });
export type StorageVmParams = Static<typeof StorageVmParams>;

/** An epoch a node may claim or write in: 1..MAX_EPOCH (see tas.ts: epochs advance one at a time). */
export const Epoch = Type.Integer({ minimum: 1, maximum: MAX_EPOCH });

/** GET /v1/storage: the disk geometry every VM disk has. */
export const StorageGeometry = Type.Object({ blockSize: Type.Integer({ minimum: 1 }), blocks: Type.Integer({ minimum: 1 }) });
export type StorageGeometry = Static<typeof StorageGeometry>;

/** GET /v1/vms/:id/tas: the VM's fencing flag (epoch 0, owner "" before the first claim). */
export const TasFlagReply = Type.Object({ epoch: Type.Integer({ minimum: 0, maximum: MAX_EPOCH }), owner: Type.String() });
export type TasFlagReply = Static<typeof TasFlagReply>;

/**
 * POST /v1/vms/:id/tas: atomic test-and-set of the VM's epoch flag. The claim
 * must name exactly the next epoch (current + 1), or be the owner's retry of
 * the current one; a claim that skips epochs is refused (409 FT_ERR_EPOCH_GAP).
 */
export const TasRequest = Type.Object({ epoch: Epoch, nodeId: Id }, { additionalProperties: false });
export type TasRequest = Static<typeof TasRequest>;

/**
 * 200 answer to a claim. won: the flag moved to `epoch` for this node (or
 * already was this node's at that epoch: retries are idempotent). Otherwise
 * (an older epoch, or the current one held by another node) `epoch`/`owner`
 * name the current holder.
 */
export const TasReply = Type.Object({ won: Type.Boolean(), epoch: Type.Integer({ minimum: 0, maximum: MAX_EPOCH }), owner: Type.String() });
export type TasReply = Static<typeof TasReply>;

/** Largest disk read or write, in blocks. */
export const MAX_BLOCKS_PER_OP = 64;

export const DiskBlockParams = Type.Object({ id: StorageVmId, block: Type.Integer({ minimum: 0, maximum: 0xffffffff }) });
export type DiskBlockParams = Static<typeof DiskBlockParams>;

export const DiskReadQuery = Type.Object({ count: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_BLOCKS_PER_OP })) });
export type DiskReadQuery = Static<typeof DiskReadQuery>;

/**
 * PUT /v1/vms/:id/disk/:block: whole blocks, fenced: only the owner of the
 * current epoch may write (409 FT_ERR_STALE_EPOCH for an older epoch, 409
 * FT_ERR_NOT_OWNER otherwise); nothing is written then.
 */
export const DiskWriteRequest = Type.Object(
  { epoch: Epoch, nodeId: Id, data: Type.String({ contentEncoding: 'base64', maxLength: 1 << 20, pattern: '^[A-Za-z0-9+/]*={0,2}$' }) },
  { additionalProperties: false },
);
export type DiskWriteRequest = Static<typeof DiskWriteRequest>;

export const DiskWriteReply = Type.Object({ ok: Type.Boolean(), epoch: Type.Integer({ minimum: 0 }) });
export type DiskWriteReply = Static<typeof DiskWriteReply>;

/** GET /v1/vms/:id/disk/:block[?count=N] → data base64 (zeros for a never-written block). */
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
  /** 400: a write (put, incr, append) without a session, or session/seq/ackBelow incomplete or inconsistent. */
  noSession: 'FT_ERR_NO_SESSION',
  /** 410: the session is unknown, closed or expired (least recently used when 256 were live): open a new one. Not applied. */
  sessionExpired: 'FT_ERR_SESSION_EXPIRED',
  /** 409: the seq is below the session's ackBelow mark: its answer was forgotten. Not applied (again). */
  seqAcked: 'FT_ERR_SEQ_ACKED',
  /** 429: seq >= ackBelow + maxOutstanding: wait for earlier answers. Not applied. */
  tooManyOutstanding: 'FT_ERR_TOO_MANY_OUTSTANDING',
} as const;
