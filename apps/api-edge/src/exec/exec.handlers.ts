// docker exec: a process made in a running container, started attached (the
// connection taken over, as attach does) or detached, its terminal resized,
// and inspected for its exit code. An exec's ID begins with its container's
// first 16 digits: that is how any edge finds the node that runs it.
import { Inject, Injectable } from '@nestjs/common';
import type { StevedoreConfig } from '@stevedore/config';
import type { containers } from '@stevedore/contracts';
import { asStevedoreError, invalid, notFound } from '@stevedore/errors';
import { CONFIG } from '../nest-context';
import type { ApiRequest } from '../http/api-request';
import type { ApiResponse } from '../http/api-response';
import { ContainerRouter, type Routed } from '../backends/container-router';
import { attachBacklog } from '../http/attach-output';
import { relayHijacked } from '../containers/hijacked-stream';
import { directOutput } from '../containers/runtime-attachment';

/** Docker's ExecConfig, as clients send it. */
interface ExecConfigBody {
  User?: string;
  Privileged?: boolean;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Detach?: boolean;
  Cmd?: string[] | string | null;
  Env?: string[] | null;
  WorkingDir?: string;
}

function strings(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw invalid(`${field} must be a list of strings`);
}

/** GET /exec/(id)/json, as today's engines answer it. */
function execShape(e: containers.Exec): object {
  const c = e.config;
  return {
    ID: e.id,
    Running: e.running,
    ExitCode: e.exitCode ?? null,
    ProcessConfig: { tty: Boolean(c?.tty), entrypoint: c?.cmd[0] ?? '', arguments: c?.cmd.slice(1) ?? [], privileged: Boolean(c?.privileged), user: c?.user ?? '' },
    OpenStdin: Boolean(c?.attachStdin),
    OpenStderr: Boolean(c?.attachStderr),
    OpenStdout: Boolean(c?.attachStdout),
    CanRemove: false,
    ContainerID: e.containerId,
    DetachKeys: '',
    Pid: e.pid,
  };
}

@Injectable()
export class ExecHandlers {
  constructor(
    private readonly router: ContainerRouter,
    @Inject(CONFIG) private readonly config: StevedoreConfig,
  ) {}

  /** The runtime that holds an exec: its container's. */
  private async at(id: string): Promise<Routed> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw notFound(`No such exec instance: ${id}`);
    try {
      return await this.router.of(id.slice(0, 16));
    } catch (err) {
      throw asStevedoreError(err).kind === 'notFound' ? notFound(`No such exec instance: ${id}`) : err;
    }
  }

  create = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const body = await req.json<ExecConfigBody>();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('The exec config must be a JSON object');
    const { rt, ref } = await this.router.of(req.params.id);
    const config: containers.ExecConfig = {
      cmd: strings(body.Cmd, 'Cmd'),
      attachStdin: Boolean(body.AttachStdin),
      attachStdout: Boolean(body.AttachStdout),
      attachStderr: Boolean(body.AttachStderr),
      tty: Boolean(body.Tty),
      privileged: Boolean(body.Privileged),
      user: typeof body.User === 'string' ? body.User : '',
      env: strings(body.Env, 'Env'),
      workingDir: typeof body.WorkingDir === 'string' ? body.WorkingDir : '',
    };
    const r = await rt.execCreate({ container: ref, config }, { requestId: req.requestId });
    res.json(201, { Id: r.id });
  };

  /** Detached: answered once the process runs. Attached: the connection is the process's stdio until it ends. */
  start = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const text = await req.bodyBeforeTakeOver();
    let body: { Detach?: boolean } = {};
    if (text.trim()) {
      try {
        body = JSON.parse(text) as { Detach?: boolean };
      } catch {
        throw invalid('The exec start body must be JSON');
      }
    }
    const id = req.params.id;
    const routed = await this.at(id);
    const { rt } = routed;
    if (body?.Detach) {
      await rt.execStart({ id }, { requestId: req.requestId });
      return res.noContent(200);
    }
    // What can be refused is refused before the connection is taken over.
    const exec = await rt.execInspect({ id }, { requestId: req.requestId });
    if (exec.started) throw invalid(`Error: Exec command ${id} has already run`);
    const c = exec.config;
    await relayHijacked(req, {
      rt,
      target: { id, exec: true, logs: false, stream: true, stdin: Boolean(c?.attachStdin), stdout: Boolean(c?.attachStdout), stderr: Boolean(c?.attachStderr), startedAt: '', ...directOutput(this.config, routed) },
      multiplex: req.atLeast('1.6') && !c?.tty,
      backlog: attachBacklog(this.config),
      failureText: (message) => `${message}\r\n`,
    });
  };

  resize = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const id = req.params.id;
    const { rt } = await this.at(id);
    await rt.execResize({ id, height: req.int('h'), width: req.int('w') }, { requestId: req.requestId });
    res.noContent(200);
  };

  inspect = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const id = req.params.id;
    const { rt } = await this.at(id);
    res.json(200, execShape(await rt.execInspect({ id }, { requestId: req.requestId })));
  };
}
