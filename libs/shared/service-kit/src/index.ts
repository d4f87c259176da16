export { createService, checkBind, authHeader, credentialsFromEnv, validatorCompiler, buildInfo, VersionReply, type BuildInfo, type RegisteredRoute, type Service, type ServiceOptions, type AuthRole, type RoleTokens } from './service.ts';
export { ERR_UNAUTHORIZED, ERR_NOT_FOUND, ERR_AUTH_CONFIG } from './errors.ts';
export { Type, type Static, type TSchema } from 'typebox';
export { DiskFaults, DiskFaultSettings, diskFaultRoutes, injectedDiskError, DISK_FAULT_DELAY_MAX_MS } from './disk-faults.ts';
