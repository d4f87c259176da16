/**
 * A small stand-in coordinator speaking the worker protocol over real HTTP
 * (node:http on 127.0.0.1, port 0), for the worker's own tests. Each route's
 * answer comes from a handler the test sets; every request is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PollReply, TaskAck, HeartbeatReply } from '@mr/mapreduce-protocol';

export interface Recorded {
  route: 'register' | 'poll' | 'complete' | 'fail' | 'heartbeat' | 'other';
  workerId?: string;
  body: any;
  auth?: string | undefined;
  /** The x-mr-worker-secret header. */
  secret?: string | undefined;
}

export type Answer = { status: number; body: unknown } | undefined;

export interface FakeHandlers {
  register?: (body: any) => Answer | Promise<Answer>;
  poll?: (workerId: string, body: any, req: IncomingMessage) => PollReply | Answer | Promise<PollReply | Answer>;
  complete?: (body: any) => TaskAck | Answer | Promise<TaskAck | Answer>;
  fail?: (body: any) => TaskAck | Answer | Promise<TaskAck | Answer>;
  heartbeat?: (body: any) => HeartbeatReply | Answer | Promise<HeartbeatReply | Answer>;
}

export class FakeCoordinator {
  readonly requests: Recorded[] = [];
  handlers: FakeHandlers = {};
  pollTimeoutMs = 2000;
  heartbeatIntervalMs = 1000;
  #server: Server;
  #nextWorker = 1;
  url = '';

  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Stops listening and drops open connections (held polls included). */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  of(route: Recorded['route']): Recorded[] {
    return this.requests.filter((r) => r.route === route);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const c of req) raw += c;
    const body = raw ? JSON.parse(raw) : undefined;
    const m = /^\/v1\/workers(?:\/([^/]+)\/(poll|complete|complete-batch|fail|heartbeat))?$/.exec(req.url ?? '');
    const workerId = m?.[1];
    let answer: unknown;
    if (m?.[2] === 'complete-batch') {
      // Recorded as one 'complete' per completion, each answered by the complete handler.
      const acks: unknown[] = [];
      for (const c of (body as { completions: unknown[] }).completions) {
        this.requests.push({ route: 'complete', ...(workerId ? { workerId } : {}), body: c, auth: req.headers.authorization, secret: req.headers['x-mr-worker-secret'] as string | undefined });
        acks.push((await this.handlers.complete?.(c)) ?? { accepted: true });
      }
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ acks }));
      return;
    }
    const route = (m ? (m[2] ?? 'register') : 'other') as Recorded['route'];
    this.requests.push({ route, ...(workerId ? { workerId } : {}), body, auth: req.headers.authorization, secret: req.headers['x-mr-worker-secret'] as string | undefined });
    switch (route) {
      case 'register':
        answer = (await this.handlers.register?.(body)) ?? {
          workerId: `w${this.#nextWorker}`,
          secret: `secret-of-w${this.#nextWorker++}`,
          pollTimeoutMs: this.pollTimeoutMs,
          heartbeatIntervalMs: this.heartbeatIntervalMs,
        };
        break;
      case 'poll':
        answer = (await this.handlers.poll?.(workerId!, body, req)) ?? { type: 'exit', reason: 'all work done' };
        break;
      case 'complete':
        answer = (await this.handlers.complete?.(body)) ?? { accepted: true };
        break;
      case 'fail':
        answer = (await this.handlers.fail?.(body)) ?? { accepted: true };
        break;
      case 'heartbeat':
        answer = (await this.handlers.heartbeat?.(body)) ?? { abandon: [] };
        break;
      default:
        answer = { status: 404, body: { statusCode: 404, code: 'MR_ERR_ROUTE_NOT_FOUND', error: 'Not Found', message: `no route ${req.method} ${req.url}` } };
    }
    if (res.destroyed) return;
    const explicit = answer && typeof answer === 'object' && 'status' in answer && typeof (answer as { status: unknown }).status === 'number';
    const status = explicit ? (answer as { status: number }).status : 200;
    const payload = explicit ? (answer as { body: unknown }).body : answer;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(payload));
  }
}
