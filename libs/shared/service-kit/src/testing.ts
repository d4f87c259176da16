/**
 * For tests of every service: its OpenAPI document validates (OpenAPI 3 schema
 * and references, by @apidevtools/swagger-parser) and lists every route the
 * service registered, with the credential each takes.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import type { OpenAPI } from 'openapi-types';
import type { Service } from './service.ts';

/** `/v1/jobs/:id` as OpenAPI writes it: `/v1/jobs/{id}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/**
 * Fetches GET /v1/openapi.json through `app.inject` (with `headers`), validates
 * it, and returns the routes it does not list (method and URL) beside the document.
 */
export async function checkOpenApi(app: Service, headers: Record<string, string> = {}): Promise<{ document: OpenAPI.Document; missing: string[] }> {
  const res = await app.inject({ method: 'GET', url: '/v1/openapi.json', headers });
  if (res.statusCode !== 200) throw new Error(`GET /v1/openapi.json answered ${res.statusCode}: ${res.body}`);
  const document = await SwaggerParser.validate(res.json<OpenAPI.Document>());
  const paths: Record<string, Record<string, unknown> | undefined> = res.json<{ paths?: Record<string, Record<string, unknown>> }>().paths ?? {};
  const missing = app.registeredRoutes
    .filter((r) => paths[openApiPath(r.url)]?.[r.method.toLowerCase()] === undefined)
    .map((r) => `${r.method} ${r.url}`);
  return { document, missing };
}
