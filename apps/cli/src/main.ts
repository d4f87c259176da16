import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, type CliContext, type CommandModule } from './context.ts';
import { UsageError } from './args.ts';

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));
/** `.js` when running compiled (dist/), `.ts` when running the sources (tests under tsx). */
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith(EXT) && !f.endsWith(`.test${EXT}`))
    .map((f) => f.slice(0, -EXT.length))
    .sort();
}

async function load(name: string): Promise<CommandModule | undefined> {
  if (!/^[a-z][a-z-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  return (await import(new URL(`./commands/${name}${EXT}`, import.meta.url).href)) as CommandModule;
}

async function overview(ctx: CliContext): Promise<string> {
  const lines = ['usage: mr <command> [options]', '', 'commands:'];
  for (const n of commandNames()) {
    const m = await load(n);
    if (m) lines.push(`  ${n.padEnd(12)} ${m.summary}`);
  }
  lines.push('', "run 'mr <command> --help' for a command's options; 'mr --version' for the version.");
  if (!ctx.env['MR_TOKEN']) lines.push('MR_TOKEN (bearer token) is read from the environment.');
  return lines.join('\n') + '\n';
}

/** `mr 0.1.0 (node 20.20.2)`: the CLI package's version, and the commit when MR_GIT_COMMIT names one. */
export function versionLine(env: Record<string, string | undefined>): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const version = pkg && typeof pkg === 'object' && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  const commit = env['MR_GIT_COMMIT'];
  return `mr ${version}${commit && /^[0-9a-f]{7,40}$/.test(commit) ? ` (${commit})` : ''} (node ${process.versions.node})\n`;
}

export async function main(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    ctx.stdout.write(versionLine(ctx.env));
    return EXIT.OK;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    ctx.stdout.write(await overview(ctx));
    return name ? EXIT.OK : EXIT.USAGE;
  }
  const cmd = await load(name);
  if (!cmd) {
    ctx.stderr.write(`mr: unknown command "${name}"\n\n${await overview(ctx)}`);
    return EXIT.USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    ctx.stdout.write(`${cmd.usage.trimEnd()}\n`);
    return EXIT.OK;
  }
  try {
    return await cmd.run(rest, ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      ctx.stderr.write(`${err.message}\n\n${cmd.usage.trimEnd()}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
}
