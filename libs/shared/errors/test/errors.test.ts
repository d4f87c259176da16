import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createError, hasCode, isCodedError } from '../src/index.ts';

test('a factory fills its template and carries code and status', () => {
  const E = createError<[string]>('MR_ERR_UNKNOWN_APP', 'unknown app "%s"', 400);
  const err = E('wcc');
  assert.equal(err.message, 'unknown app "wcc"');
  assert.equal(err.code, 'MR_ERR_UNKNOWN_APP');
  assert.equal(err.statusCode, 400);
  assert.equal(err.retryable, false);
  assert.equal(E.code, 'MR_ERR_UNKNOWN_APP');
  assert.ok(isCodedError(err));
  assert.ok(hasCode(err, 'MR_ERR_UNKNOWN_APP'));
  assert.ok(!hasCode(err, 'OTHER'));
});

test('errors are matched by code, not identity', () => {
  const plain = Object.assign(new Error('x'), { code: 'ECONNREFUSED' });
  assert.ok(hasCode(plain, 'ECONNREFUSED'));
  assert.ok(!isCodedError(plain));
  assert.ok(!hasCode('ECONNREFUSED'));
  assert.ok(createError('X', 'y', 503)().retryable);
});
