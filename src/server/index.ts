/**
 * The bench server: express serves the built bench-ui and a JSON API over the store; socket.io
 * pushes live campaign and search events. Read-only views are open; control needs the token.
 */
export { createBenchServer, defaultUiDir } from './app.js';
export type { BenchServer, BenchServerOptions } from './app.js';
export { CampaignController } from './controller.js';
export type { ActiveCampaign } from './controller.js';
export { LiveEventSchema, ReplayRequestSchema, ApiErrorSchema } from './events.js';
export type { ApiError, LiveEvent, LiveEventKind } from './events.js';
export { httpErrorOf, newToken, tokenMatches } from './http.js';
export { LiveHub } from './live.js';
export { listProfiles, StoreViews } from './views.js';
export type { Heatmap, Histograms, RunDetail, RunListItem } from './views.js';
