export { buildCoordinator, schedulerConfig, type CoordinatorOptions } from './app.ts';
export { startCoordinator, type StartOptions, type RunningCoordinator } from './server.ts';
export { SchedulerDriver } from './plugins/app/scheduler-driver.ts';
export { Journal } from './plugins/app/journal.ts';
