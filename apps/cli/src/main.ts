import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, type CliContext, type CommandModule } from './context.ts';
import { UsageError } from './args.ts';

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function load(name: string): Promise<CommandModule | undefined> {
  if (!/^[a-z][a-z-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  return (await import(`./commands/${name}.ts`)) as CommandModule;
}

async function overview(ctx: CliContext): Promise<string> {
  const lines = ['usage: mr <command> [options]', '', 'commands:'];
  for (const n of commandNames()) {
    const m = await load(n);
    if (m) lines.push(`  ${n.padEnd(12)} ${m.summary}`);
  }
  lines.push('', "run 'mr <command> --help' for a command's options.");
  if (!ctx.env['MR_TOKEN']) lines.push('MR_TOKEN (bearer token) is read from the environment.');
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
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
