export { DeviceEndpoint, DEFAULT_DEVICE_CONFIG } from './endpoint.js';
export type { DeviceEndpointOptions } from './endpoint.js';
export type { MacroBackend, MacroIdentity, OperationContext, ProgramCells, ProgramJob } from './backend.js';
export { serveStream, serveTcp } from './serve.js';
