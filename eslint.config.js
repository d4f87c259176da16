// Lint for the whole workspace. Cores (libs/*/core, libs/vmft/cpu, libs/shared/chaos) get extra
// rules that keep them pure: no I/O, clock, timers, process or Math.random.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const coreBannedImports = [
  'fastify', 'undici', 'pino', 'prom-client', 'node:fs', 'fs', 'node:net', 'net', 'node:http', 'http',
  'node:http2', 'http2', 'node:child_process', 'child_process', 'node:fs/promises', 'fs/promises',
];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.nx/**', 'data/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['libs/mapreduce/core/src/**/*.ts', 'libs/vmft/core/src/**/*.ts', 'libs/vmft/cpu/src/**/*.ts', 'libs/shared/chaos/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: coreBannedImports, patterns: ['@opentelemetry/*'] }],
      'no-restricted-globals': ['error', 'Date', 'setTimeout', 'setInterval', 'setImmediate', 'process', 'performance'],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'inject a seeded Rng' }],
    },
  },
);
