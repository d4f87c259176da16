import { EXIT, type CliContext } from '../context.ts';
import { coordinatorUrl, parse, UsageError } from '../args.ts';
import type { JobView } from '@mr/mapreduce-protocol';

export const summary = 'cancel a job (its running attempts are abandoned; its outputs so far are removed)';

export const usage = `usage: mr cancel --coordinator URL [--json] JOB_ID

Cancels JOB_ID (DELETE /v1/jobs/JOB_ID) and prints its final state.

options:
  --coordinator URL   coordinator base URL, e.g. http://127.0.0.1:7070 (required; default: MR_COORDINATOR)
  --json              print the cancelled job (the coordinator's JobView) as JSON

exit codes: 0 cancelled (also when it already was), 1 the job had already succeeded or failed,
            2 bad usage or unknown job, 3 coordinator unreachable or token refused.
environment: MR_TOKEN (bearer token), MR_COORDINATOR (default --coordinator).`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parse('cancel', argv, { coordinator: { type: 'string' }, json: { type: 'boolean' } }, true);
  if (!args) {
    ctx.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  const v = args.values;
  const coordinator = coordinatorUrl(v.coordinator, ctx.env, 'mr cancel');
  if (args.positionals.length !== 1) throw new UsageError('mr cancel: give exactly one JOB_ID');
  const id = args.positionals[0]!;
  const { connect, ApiError } = await import('../http.ts');
  const { ROUTES } = await import('@mr/mapreduce-protocol/routes');
  const api = connect('cancel', coordinator, ctx.env['MR_TOKEN']);
  try {
    const job = await api.delete<JobView>(ROUTES.job(id));
    ctx.stdout.write(v.json ? `${JSON.stringify(job)}\n` : `job ${job.id} ${job.state}\n`);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof ApiError) {
      ctx.stderr.write(`mr cancel: ${err.message}\n`);
      // 409 MR_ERR_JOB_FINISHED: the job ended before the cancel, which is not a usage error.
      return err.code === 'MR_ERR_JOB_FINISHED' ? EXIT.FAILED : err.exitCode;
    }
    throw err;
  } finally {
    await api.close();
  }
}
