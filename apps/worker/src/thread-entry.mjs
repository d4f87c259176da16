// Entry of a task thread when the worker runs from its TypeScript sources (tests
// under tsx; see task-runner.ts): register tsx's loader in this thread, then load
// the real entry. Compiled (dist/), threads start at thread-main.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./thread-main.ts');
