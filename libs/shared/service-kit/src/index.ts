export { createService, checkBind, type ServiceOptions } from './service.ts';
export { ERR_UNAUTHORIZED, ERR_NOT_FOUND } from './errors.ts';
export { Type, type Static, type TSchema } from 'typebox';
