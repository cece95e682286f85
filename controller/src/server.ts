import type { ControllerConfig } from './config';
import { startController, type RunningController, type StartOptions } from './controller';

/** Starts the controller and listens; the process entry point (`perch-controller serve`) uses this. */
export function serve(config: ControllerConfig, options: StartOptions = {}): Promise<RunningController> {
  return startController(config, { ...options, listen: true });
}
