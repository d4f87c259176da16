/**
 * This coordinator's place in a replicated pair: active (with or without a
 * standby), standby (following an active), or deposed; what GET /v1/standby
 * and /healthz report.
 */
import type { ReplicationSource } from './source.ts';
import type { StandbyFollower } from './follower.ts';

export type Role = 'active' | 'standby' | 'deposed';

export interface ReplicationStatus {
  role: Role;
  mode: 'alone' | 'protected' | 'arbitrating' | 'deposed' | 'following' | 'unarbitrated';
  protected: boolean;
  nodeId: string;
  epoch: number;
  seq: number;
  acked?: number;
  standby?: string;
  active?: string;
  liveSince?: string;
  firstWorkerReplyAt?: string;
}

export class Replication {
  readonly nodeId: string;
  source: ReplicationSource | undefined;
  follower: StandbyFollower | undefined;
  /** The coordinator a standby follows. */
  activeUrl: string | undefined;
  #role: Role;
  liveSince: string | undefined;
  firstWorkerReplyAt: string | undefined;

  constructor(nodeId: string, role: Role) {
    this.nodeId = nodeId;
    this.#role = role;
  }

  role(): Role {
    if (this.#role === 'active' && this.source?.mode === 'deposed') return 'deposed';
    return this.#role;
  }

  setRole(r: Role): void {
    this.#role = r;
  }

  /** Why this coordinator does not serve (undefined: it does). */
  notServing(): string | undefined {
    const r = this.role();
    if (r === 'standby') return `this coordinator is a standby of ${this.activeUrl ?? 'the active'}: use the active`;
    if (r === 'deposed') return 'this coordinator was deposed: another coordinator holds a newer epoch';
    return undefined;
  }

  status(): ReplicationStatus {
    const role = this.role();
    const base = { role, nodeId: this.nodeId, ...(this.liveSince ? { liveSince: this.liveSince } : {}), ...(this.firstWorkerReplyAt ? { firstWorkerReplyAt: this.firstWorkerReplyAt } : {}) };
    if (role === 'standby') {
      const f = this.follower;
      return { ...base, mode: 'following', protected: false, epoch: f?.epoch ?? 0, seq: f?.applied ?? 0, ...(this.activeUrl ? { active: this.activeUrl } : {}) };
    }
    const s = this.source?.status();
    if (!s) return { ...base, mode: 'unarbitrated', protected: false, epoch: 0, seq: 0 };
    return { ...base, mode: s.mode, protected: s.mode === 'protected', epoch: s.epoch, seq: s.seq, ...(s.acked !== undefined ? { acked: s.acked } : {}), ...(s.standby ? { standby: s.standby } : {}) };
  }
}
