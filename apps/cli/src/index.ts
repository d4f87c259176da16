export { main } from './main.ts';
export { EXIT, type CliContext, type CommandModule } from './context.ts';
export { parse, durationMs, intOption, UsageError } from './args.ts';
