// Entry of a task thread (see task-runner.ts). The worker's sources are
// TypeScript: register tsx's loader in this thread, then load the real entry.
import { register } from 'tsx/esm/api';

register();
await import('./thread-main.ts');
