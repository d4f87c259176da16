/** Pino options shared by every service: JSON lines, a service field, no pid/hostname noise. */
export function loggerOptions(opts: { service: string; level?: string }) {
  return {
    level: opts.level ?? 'info',
    base: { service: opts.service },
    redact: ['req.headers.authorization'],
  };
}
