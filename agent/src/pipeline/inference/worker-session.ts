import { Worker } from 'node:worker_threads';
import type { TensorData } from '../preprocess/tensor';
import type { Outputs, OutputTensor } from '../postprocess/types';
import type { TensorMeta } from '../spec';

/**
 * onnxruntime-node's `session.run` is synchronous underneath its promise: it blocks the event loop for the
 * whole inference (onnxruntime issues #19611, #26968). In the agent that would stall MQTT keep-alives and,
 * in the pipeline, the decode of the next frame. So each session lives in a worker thread of its own and
 * the main thread only posts tensors to it. The worker is plain JavaScript evaluated from a string, so it
 * runs the same from dist/ and under jest.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
const meta = (m) => m.map((x) => ({ name: x.name, isTensor: x.isTensor, type: x.type, shape: x.shape ? Array.from(x.shape) : undefined }));
const fail = (id, err) => parentPort.postMessage({ id, ok: false, message: err && err.message ? err.message : String(err) });
parentPort.on('message', async (msg) => {
  try {
    if (msg.op === 'load') {
      session = await ort.InferenceSession.create(msg.model, msg.options);
      parentPort.postMessage({ id: msg.id, ok: true, inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) });
    } else if (msg.op === 'run') {
      const feeds = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const out = msg.outputNames ? await session.run(feeds, msg.outputNames) : await session.run(feeds);
      const outputs = {};
      const transfer = [];
      for (const [name, t] of Object.entries(out)) {
        outputs[name] = { type: t.type, dims: Array.from(t.dims), data: t.data };
        if (t.data && t.data.buffer instanceof ArrayBuffer) transfer.push(t.data.buffer);
      }
      parentPort.postMessage({ id: msg.id, ok: true, outputs }, transfer);
    } else if (msg.op === 'release') {
      if (session) await session.release();
      session = undefined;
      parentPort.postMessage({ id: msg.id, ok: true });
    }
  } catch (err) {
    fail(msg.id, err);
  }
});
`;

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly message?: string;
  readonly inputs?: TensorMeta[];
  readonly outputs?: TensorMeta[] | Record<string, OutputTensor>;
}

export class WorkerSessionError extends Error {}

/** One onnxruntime session in its own worker thread. Calls are answered in order. */
export class WorkerSession {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private dead: Error | undefined;
  inputMetadata: readonly TensorMeta[] = [];
  outputMetadata: readonly TensorMeta[] = [];

  private constructor(private readonly worker: Worker) {
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r);
      else p.reject(new WorkerSessionError(r.message ?? 'inference worker error'));
    });
    const die = (err: Error) => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new WorkerSessionError(`inference worker exited (${code})`)));
    // An idle worker must not keep the agent (or a test run) alive.
    worker.unref();
  }

  static async create(model: string | Uint8Array, options: Record<string, unknown>): Promise<WorkerSession> {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ortPath: require.resolve('onnxruntime-node') },
    });
    const s = new WorkerSession(worker);
    try {
      const r = await s.call({ op: 'load', model, options });
      s.inputMetadata = (r.inputs ?? []) as TensorMeta[];
      s.outputMetadata = (r.outputs ?? []) as TensorMeta[];
      return s;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
  }

  private call(msg: Record<string, unknown>): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...msg, id });
    }).finally(() => {
      if (this.pending.size === 0 && !this.dead) this.worker.unref();
    });
  }

  /** False once the worker has died (crashed or was terminated); the session must then be recreated. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  async run(feeds: Record<string, TensorData>, outputNames?: readonly string[]): Promise<Outputs> {
    const r = await this.call({
      op: 'run',
      feeds,
      ...(outputNames ? { outputNames: [...outputNames] } : {}),
    });
    return (r.outputs ?? {}) as Outputs;
  }

  async release(): Promise<void> {
    if (!this.dead) await this.call({ op: 'release' }).catch(() => undefined);
    await this.worker.terminate();
  }
}
