#!/usr/bin/env node
// The `mr` command. Sources are TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
const code = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
if (code !== undefined) process.exitCode = code;
