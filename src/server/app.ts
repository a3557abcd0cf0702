import express, { type NextFunction, type Request, type Response } from 'express';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Server as SocketServer } from 'socket.io';
import type { ExecuteOptions } from '../bench/index.js';
import { packageDir } from '../common/paths.js';
import { openDatabase, type Db } from '../store/index.js';
import { CampaignController } from './controller.js';
import { ReplayRequestSchema, type LiveEvent } from './events.js';
import {
  CellsQuerySchema,
  ControlBodySchema,
  DiscrepancyQuerySchema,
  EmptyQuerySchema,
  errorMiddleware,
  hostnameOf,
  HttpError,
  LOOPBACK,
  originAllowed,
  parseRequest,
  requireToken,
  RunIdParamsSchema,
  RunListQuerySchema,
  StartCampaignBodySchema,
} from './http.js';
import { LiveHub } from './live.js';
import { listProfiles, StoreViews } from './views.js';

export interface BenchServerOptions {
  readonly dbPath: string;
  /** Control actions need it (Authorization: Bearer <token>). */
  readonly token: string;
  readonly campaignsDir: string;
  readonly openLink: ExecuteOptions['openLink'];
  /** Run campaigns in a worker thread with this module's `openLink` (a file URL); see ControllerDeps. */
  readonly linkModule?: string;
  /** The built bench-ui folder (index.html, app.js); default dist/bench-ui of this package. */
  readonly uiDir?: string;
  /** Extra browser origins allowed to open the socket (the page's own origin always is). */
  readonly allowedOrigins?: readonly string[];
  /** Refuse Host headers other than loopback names (DNS rebinding); set when bound to 127.0.0.1. */
  readonly loopbackOnly?: boolean;
  readonly calibrationDir?: string;
  readonly hub?: LiveHub;
  readonly log?: (line: string) => void;
}

export interface BenchServer {
  readonly app: express.Express;
  readonly http: HttpServer;
  readonly io: SocketServer;
  readonly hub: LiveHub;
  readonly controller: CampaignController;
  /** Resolves with the URL once listening. */
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

/** Request bodies are small (a file name, a reason); anything larger is refused with 413. */
const BODY_LIMIT = '16kb';
const SOCKET_LIMIT_BYTES = 16 * 1024;

export function defaultUiDir(): string {
  return packageDir('dist', 'bench-ui');
}

function hostAllowed(host: string | undefined, loopbackOnly: boolean): boolean {
  if (!loopbackOnly) return true;
  const name = hostnameOf(host);
  return name !== undefined && LOOPBACK.has(name);
}

/**
 * Builds the bench server (express app, HTTP server, socket.io) without listening: json-server's
 * createApp. `cimbench serve` and the tests listen on it.
 */
export function createBenchServer(opts: BenchServerOptions): BenchServer {
  const db: Db = openDatabase(opts.dbPath);
  const views = new StoreViews(db);
  const hub = opts.hub ?? new LiveHub();
  const controller = new CampaignController({ dbPath: opts.dbPath, campaignsDir: opts.campaignsDir, openLink: opts.openLink, ...(opts.linkModule ? { linkModule: opts.linkModule } : {}), hub, ...(opts.log ? { log: opts.log } : {}) });
  const uiDir = opts.uiDir ?? defaultUiDir();
  const loopbackOnly = opts.loopbackOnly ?? false;
  const allowed = opts.allowedOrigins ?? [];
  const control = requireToken(opts.token);

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:");
    if (!hostAllowed(req.get('host'), loopbackOnly)) return next(new HttpError(403, 'FORBIDDEN', 'this bench server answers only to 127.0.0.1 / localhost'));
    next();
  });
  app.use('/api', express.json({ limit: BODY_LIMIT, strict: true, type: () => true }));

  const api = express.Router();
  const empty = (req: Request): void => void parseRequest(EmptyQuerySchema, req.query, 'query');

  api.get('/runs', (req, res) => {
    const q = parseRequest(RunListQuerySchema, req.query, 'query');
    res.json({ runs: views.listRuns(q.limit) });
  });
  api.get('/runs/:id', (req, res) => {
    const { id } = parseRequest(RunIdParamsSchema, req.params, 'path');
    empty(req);
    res.json(views.runDetail(id));
  });
  api.get('/runs/:id/cells', (req, res) => {
    const { id } = parseRequest(RunIdParamsSchema, req.params, 'path');
    const q = parseRequest(CellsQuerySchema, req.query, 'query');
    res.json(views.heatmap(id, q.array, q.bins));
  });
  api.get('/runs/:id/discrepancies', (req, res) => {
    const { id } = parseRequest(RunIdParamsSchema, req.params, 'path');
    const q = parseRequest(DiscrepancyQuerySchema, req.query, 'query');
    res.json({ rows: views.discrepancies(id, q) });
  });
  api.get('/searches', (req, res) => {
    const q = parseRequest(RunListQuerySchema, req.query, 'query');
    res.json({ searches: views.listSearches(q.limit) });
  });
  api.get('/searches/:id', (req, res) => {
    const { id } = parseRequest(RunIdParamsSchema, req.params, 'path');
    empty(req);
    res.json(views.searchDetail(id));
  });
  api.get('/calibration/profiles', (req, res) => {
    empty(req);
    res.json({ profiles: listProfiles(opts.calibrationDir) });
  });
  api.get('/campaigns', (req, res) => {
    empty(req);
    res.json({ files: controller.files(), active: controller.current() });
  });
  api.post('/campaigns', control, async (req, res) => {
    empty(req);
    const body = parseRequest(StartCampaignBodySchema, req.body, 'body');
    const started = await controller.start(body.file, body.mode);
    res.status(201).json(started);
  });
  for (const action of ['pause', 'resume', 'abort'] as const) {
    api.post(`/campaigns/:id/${action}`, control, async (req, res) => {
      empty(req);
      const { id } = parseRequest(RunIdParamsSchema, req.params, 'path');
      const body = parseRequest(ControlBodySchema, req.body, 'body');
      res.json(await (action === 'resume' ? controller.resume(id) : controller[action](id, body.reason)));
    });
  }
  api.use((req, _res, next) => next(new HttpError(404, 'NOT_FOUND', `no API route ${req.method} ${req.path}`)));
  app.use('/api', api);

  if (existsSync(join(uiDir, 'index.html'))) {
    app.use(express.static(uiDir, { index: 'index.html', maxAge: 0 }));
  } else {
    app.get('/', (_req, _res, next) => next(new HttpError(503, 'UI_NOT_BUILT', `the bench UI is not built (no ${join(uiDir, 'index.html')}): run npm run build:ui`)));
  }
  app.use(errorMiddleware(opts.log));

  const http = createServer(app);
  const io = new SocketServer(http, {
    serveClient: false,
    maxHttpBufferSize: SOCKET_LIMIT_BYTES,
    allowRequest: (req: IncomingMessage, cb) => {
      const origin = req.headers.origin;
      if (!hostAllowed(req.headers.host, loopbackOnly)) return cb('host not allowed', false);
      if (!originAllowed(origin, req.headers.host, allowed)) return cb(`origin ${String(origin)} not allowed`, false);
      cb(null, true);
    },
  });
  const offHub = hub.on((e: LiveEvent) => io.emit('live', e));
  io.on('connection', (socket) => {
    socket.emit('replay', hub.replay(-1));
    socket.on('replay', (raw: unknown) => {
      const r = ReplayRequestSchema.safeParse(raw ?? {});
      if (!r.success) {
        socket.emit('live', { seq: -1, at: Date.now(), runId: null, kind: 'error', code: 'INVALID_INPUT', message: `replay: ${r.error.issues.map((i) => `${i.path.join('.') || 'payload'}: ${i.message}`).join('; ')}` });
        return;
      }
      socket.emit('replay', hub.replay(r.data.since));
    });
    // Clients send nothing else; anything else is named and ignored.
    socket.onAny((name: string) => {
      if (name !== 'replay') socket.emit('live', { seq: -1, at: Date.now(), runId: null, kind: 'error', code: 'INVALID_INPUT', message: `unknown event ${name}` });
    });
  });

  return {
    app,
    http,
    io,
    hub,
    controller,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          const a = http.address() as AddressInfo;
          resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    close: async () => {
      offHub();
      await controller.shutdown();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      if (http.listening) await new Promise<void>((resolve) => http.close(() => resolve()));
      db.close();
    },
  };
}
